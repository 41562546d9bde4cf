"""riskbento: spec-driven tabular risk scoring, from customer data to a BentoML service."""
