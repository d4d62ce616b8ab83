"""Reading a sweep: its saved spec, its trials grouped into configs over seeds, the Pareto front,
the chosen config (`best`) and its deployment handoff (registry, export, model card), and what
the HTML report draws. Imports no Ray; the read commands import no MLflow or torch either.
"""
