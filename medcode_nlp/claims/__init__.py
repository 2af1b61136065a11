"""Claim views of a result: FHIR Bundles, CMS-HCC, MS-DRG, code status."""
