"""The standards of the field, as pure builders over plain data (no Django): CDISC ODM 1.3.2 and
Define-XML 2.1, SDTM derivations and Dataset-JSON v1.1, USDM v4, HL7 FHIR R4 resources, and the
code systems they share (CDISC controlled terminology, LOINC, UCUM). `apps/exports` gathers the
trial's data within the caller's access and hands it to these builders."""
