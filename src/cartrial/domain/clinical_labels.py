"""How clinical contract keys read to a person: one label (an English msgid) per key.

The keys themselves (`organic_brain_syndrome`, `lupus_nephritis_class_3`, `mycophenolate`…) are the
stable calculator and screening contract; forms, pages and explanations show these labels instead,
translated by the adapter from the project catalog.
"""

from __future__ import annotations

from cartrial.domain.text import N_, Message, label

CLINICAL_LABELS: dict[str, str] = {
    # SLEDAI-2K descriptors (Gladman 2002) and shared EULAR/ACR items
    "seizure": N_("Seizure"),
    "psychosis": N_("Psychosis"),
    "organic_brain_syndrome": N_("Organic brain syndrome"),
    "visual_disturbance": N_("Visual disturbance (retinal changes)"),
    "cranial_nerve_disorder": N_("Cranial nerve disorder"),
    "lupus_headache": N_("Lupus headache"),
    "cva": N_("Cerebrovascular accident"),
    "vasculitis": N_("Vasculitis"),
    "arthritis": N_("Arthritis"),
    "myositis": N_("Myositis"),
    "urinary_casts": N_("Urinary casts"),
    "hematuria": N_("Haematuria"),
    "proteinuria": N_("Proteinuria"),
    "pyuria": N_("Pyuria"),
    "rash": N_("Rash"),
    "alopecia": N_("Alopecia"),
    "mucosal_ulcers": N_("Mucosal ulcers"),
    "pleurisy": N_("Pleurisy"),
    "pericarditis": N_("Pericarditis"),
    "low_complement": N_("Low complement (C3, C4 or CH50)"),
    "increased_dna_binding": N_("Increased anti-DNA binding"),
    "fever": N_("Fever"),
    "thrombocytopenia": N_("Thrombocytopenia"),
    "leukopenia": N_("Leukopenia"),
    # 2019 EULAR/ACR criteria (Aringer 2019)
    "autoimmune_hemolysis": N_("Autoimmune haemolysis"),
    "delirium": N_("Delirium"),
    "non_scarring_alopecia": N_("Non-scarring alopecia"),
    "oral_ulcers": N_("Oral ulcers"),
    "subacute_cutaneous_lupus": N_("Subacute cutaneous lupus"),
    "discoid_lupus": N_("Discoid lupus"),
    "acute_cutaneous_lupus": N_("Acute cutaneous lupus"),
    "pleural_effusion": N_("Pleural effusion"),
    "pericardial_effusion": N_("Pericardial effusion"),
    "acute_pericarditis": N_("Acute pericarditis"),
    "joint_involvement": N_("Joint involvement"),
    "lupus_nephritis_class_2": N_("Lupus nephritis class II"),
    "lupus_nephritis_class_5": N_("Lupus nephritis class V"),
    "lupus_nephritis_class_3": N_("Lupus nephritis class III"),
    "lupus_nephritis_class_4": N_("Lupus nephritis class IV"),
    "anticardiolipin": N_("Anticardiolipin antibodies"),
    "anti_beta2gp1": N_("Anti-β2GP1 antibodies"),
    "lupus_anticoagulant": N_("Lupus anticoagulant"),
    "low_c3": N_("Low C3"),
    "low_c4": N_("Low C4"),
    "low_c3_and_low_c4": N_("Low C3 and low C4"),
    "anti_dsdna": N_("Anti-dsDNA antibodies"),
    "anti_smith": N_("Anti-Smith antibodies"),
    # 2019 EULAR/ACR domains (those not named like a BILAG domain below)
    "hematologic": N_("Haematologic"),
    "serosal": N_("Serosal"),
    "antiphospholipid_antibodies": N_("Antiphospholipid antibodies"),
    "complement_proteins": N_("Complement proteins"),
    "sle_specific_antibodies": N_("SLE-specific antibodies"),
    # BILAG-2004 organ domains
    "renal": N_("Renal"),
    "neuropsychiatric": N_("Neuropsychiatric"),
    "cardiorespiratory": N_("Cardiorespiratory"),
    "haematological": N_("Haematological"),
    "gastrointestinal": N_("Gastrointestinal"),
    "ophthalmic": N_("Ophthalmic"),
    "musculoskeletal": N_("Musculoskeletal"),
    "mucocutaneous": N_("Mucocutaneous"),
    "constitutional": N_("Constitutional"),
    # Treatments
    "azathioprine": N_("Azathioprine"),
    "anifrolumab": N_("Anifrolumab"),
    "belimumab": N_("Belimumab"),
    "ciclosporin": N_("Ciclosporin"),
    "cyclophosphamide": N_("Cyclophosphamide"),
    "methotrexate": N_("Methotrexate"),
    "mycophenolate": N_("Mycophenolate"),
    "obinutuzumab": N_("Obinutuzumab"),
    "rituximab": N_("Rituximab"),
    "tacrolimus": N_("Tacrolimus"),
    "voclosporin": N_("Voclosporin"),
    # Patient and units
    "female": N_("Female"),
    "male": N_("Male"),
    "umol/L": N_("µmol/L"),
    # ICANS domains (ASTCT 2019)
    "ice": N_("ICE score"),
    "consciousness": N_("Depressed level of consciousness"),
    "motor_weakness": N_("Motor weakness"),
    "cerebral_edema": N_("Raised intracranial pressure / cerebral oedema"),
    # CTCAE v5.0 terms
    "neutrophil_count_decreased": N_("Neutrophil count decreased"),
    "platelet_count_decreased": N_("Platelet count decreased"),
    "white_blood_cell_decreased": N_("White blood cell decreased"),
    "lymphocyte_count_decreased": N_("Lymphocyte count decreased"),
    "anemia": N_("Anaemia"),
    # DORIS, LLDAS and SRI-4 criteria (the `unmet` codes)
    "clinical_sledai": N_("Clinical SLEDAI"),
    "sledai": N_("SLEDAI-2K"),
    "pga": N_("Physician global assessment (PGA)"),
    "prednisone_mg_per_day": N_("Prednisone dose"),
    "maintenance_therapy_stable": N_("Stable maintenance therapy"),
    "major_organ_activity": N_("Major organ activity"),
    "hemolytic_anemia": N_("Haemolytic anaemia"),
    "gi_activity": N_("Gastrointestinal activity"),
    "new_features": N_("New features of lupus activity"),
    "standard_maintenance_only": N_("Standard maintenance treatment only"),
    "sledai_reduction": N_("SLEDAI reduction"),
    "new_bilag_a": N_("New BILAG A domains"),
    "new_bilag_b": N_("New BILAG B domains"),
    "pga_worsening": N_("PGA worsening"),
    # Analytes of the unit conversions
    "upcr": N_("Urine protein/creatinine ratio"),
    "creatinine": N_("Creatinine"),
    "c3": N_("Complement C3"),
    "c4": N_("Complement C4"),
    "igg": N_("Immunoglobulin G"),
    "hemoglobin": N_("Haemoglobin"),
    "neutrophils": N_("Neutrophils"),
    # ICAHT early-duration rule
    "cumulative": N_("cumulative days"),
    "longest_episode": N_("longest episode"),
}


def clinical_label(key: str) -> str:
    """The key's label (a msgid: adapters translate it); an unknown key is shown as itself, spaced."""
    return CLINICAL_LABELS.get(key, key.replace("_", " "))


def clinical_labels(keys: object) -> list[Message]:
    """Labels of contract keys as message parameters, in the order given."""
    if not isinstance(keys, list | tuple):
        return []
    return [label(clinical_label(str(key))) for key in keys]


LABELLED_KEYS: frozenset[str] = frozenset(CLINICAL_LABELS)
