"""How clinical contract keys read to a person, in French and English.

The keys themselves (`organic_brain_syndrome`, `lupus_nephritis_class_3`, `mycophenolate`…) are the
stable calculator and screening contract; forms and pages show these labels instead.
"""

from __future__ import annotations

# key: (English, French)
_LABELS: dict[str, tuple[str, str]] = {
    # SLEDAI-2K descriptors (Gladman 2002) and shared EULAR/ACR items
    "seizure": ("Seizure", "Convulsions"),
    "psychosis": ("Psychosis", "Psychose"),
    "organic_brain_syndrome": ("Organic brain syndrome", "Syndrome cérébral organique"),
    "visual_disturbance": ("Visual disturbance (retinal changes)", "Troubles visuels (atteinte rétinienne)"),
    "cranial_nerve_disorder": ("Cranial nerve disorder", "Atteinte des nerfs crâniens"),
    "lupus_headache": ("Lupus headache", "Céphalées lupiques"),
    "cva": ("Cerebrovascular accident", "Accident vasculaire cérébral"),
    "vasculitis": ("Vasculitis", "Vascularite"),
    "arthritis": ("Arthritis (≥ 2 joints)", "Arthrite (≥ 2 articulations)"),
    "myositis": ("Myositis", "Myosite"),
    "urinary_casts": ("Urinary casts", "Cylindres urinaires"),
    "hematuria": ("Haematuria", "Hématurie"),
    "proteinuria": ("Proteinuria", "Protéinurie"),
    "pyuria": ("Pyuria", "Leucocyturie"),
    "rash": ("Rash", "Éruption cutanée"),
    "alopecia": ("Alopecia", "Alopécie"),
    "mucosal_ulcers": ("Mucosal ulcers", "Ulcérations muqueuses"),
    "pleurisy": ("Pleurisy", "Pleurésie"),
    "pericarditis": ("Pericarditis", "Péricardite"),
    "low_complement": ("Low complement (C3, C4 or CH50)", "Complément bas (C3, C4 ou CH50)"),
    "increased_dna_binding": ("Increased anti-DNA binding", "Anti-ADN augmentés"),
    "fever": ("Fever", "Fièvre"),
    "thrombocytopenia": ("Thrombocytopenia", "Thrombopénie"),
    "leukopenia": ("Leukopenia", "Leucopénie"),
    # 2019 EULAR/ACR criteria (Aringer 2019)
    "autoimmune_hemolysis": ("Autoimmune haemolysis", "Hémolyse auto-immune"),
    "delirium": ("Delirium", "Syndrome confusionnel"),
    "non_scarring_alopecia": ("Non-scarring alopecia", "Alopécie non cicatricielle"),
    "oral_ulcers": ("Oral ulcers", "Ulcérations buccales"),
    "subacute_cutaneous_lupus": ("Subacute cutaneous lupus", "Lupus cutané subaigu"),
    "discoid_lupus": ("Discoid lupus", "Lupus discoïde"),
    "acute_cutaneous_lupus": ("Acute cutaneous lupus", "Lupus cutané aigu"),
    "pleural_effusion": ("Pleural effusion", "Épanchement pleural"),
    "pericardial_effusion": ("Pericardial effusion", "Épanchement péricardique"),
    "acute_pericarditis": ("Acute pericarditis", "Péricardite aiguë"),
    "joint_involvement": ("Joint involvement", "Atteinte articulaire"),
    "lupus_nephritis_class_2": ("Lupus nephritis class II", "Néphrite lupique classe II"),
    "lupus_nephritis_class_5": ("Lupus nephritis class V", "Néphrite lupique classe V"),
    "lupus_nephritis_class_3": ("Lupus nephritis class III", "Néphrite lupique classe III"),
    "lupus_nephritis_class_4": ("Lupus nephritis class IV", "Néphrite lupique classe IV"),
    "anticardiolipin": ("Anticardiolipin antibodies", "Anticorps anticardiolipine"),
    "anti_beta2gp1": ("Anti-β2GP1 antibodies", "Anticorps anti-β2GP1"),
    "lupus_anticoagulant": ("Lupus anticoagulant", "Anticoagulant lupique"),
    "low_c3": ("Low C3", "C3 bas"),
    "low_c4": ("Low C4", "C4 bas"),
    "anti_dsdna": ("Anti-dsDNA antibodies", "Anticorps anti-ADN natif"),
    "anti_smith": ("Anti-Smith antibodies", "Anticorps anti-Sm"),
    # BILAG-2004 organ domains
    "renal": ("Renal", "Rénal"),
    "neuropsychiatric": ("Neuropsychiatric", "Neuropsychiatrique"),
    "cardiorespiratory": ("Cardiorespiratory", "Cardiorespiratoire"),
    "haematological": ("Haematological", "Hématologique"),
    "gastrointestinal": ("Gastrointestinal", "Gastro-intestinal"),
    "ophthalmic": ("Ophthalmic", "Ophtalmologique"),
    "musculoskeletal": ("Musculoskeletal", "Musculo-squelettique"),
    "mucocutaneous": ("Mucocutaneous", "Cutanéo-muqueux"),
    "constitutional": ("Constitutional", "Général"),
    # Treatments
    "azathioprine": ("Azathioprine", "Azathioprine"),
    "anifrolumab": ("Anifrolumab", "Anifrolumab"),
    "belimumab": ("Belimumab", "Bélimumab"),
    "ciclosporin": ("Ciclosporin", "Ciclosporine"),
    "cyclophosphamide": ("Cyclophosphamide", "Cyclophosphamide"),
    "methotrexate": ("Methotrexate", "Méthotrexate"),
    "mycophenolate": ("Mycophenolate", "Mycophénolate"),
    "obinutuzumab": ("Obinutuzumab", "Obinutuzumab"),
    "rituximab": ("Rituximab", "Rituximab"),
    "tacrolimus": ("Tacrolimus", "Tacrolimus"),
    "voclosporin": ("Voclosporin", "Voclosporine"),
}


def clinical_label(key: str, language: str = "en") -> str:
    """The key as a person reads it; an unknown key is shown as itself, spaced."""
    labels = _LABELS.get(key)
    if labels is None:
        return key.replace("_", " ")
    return labels[1] if language == "fr" else labels[0]


LABELLED_KEYS: frozenset[str] = frozenset(_LABELS)
