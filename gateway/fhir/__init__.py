"""The FHIR R4 face at /fhir. The blueprint lives in gateway.fhir.blueprint, so that services can use the
pure parts of this package (params, extract, search, paging, bundles) without loading the web layer."""
