"""Data exchange: the EHR/social-services extract format (v1), FHIR, register export."""
