"""Logistics records: chain of identity (CoI, DIN), collections, shipments and their temperature
logs, custody hand-overs, manufacturing batches with QC, receipt, thaw, bedside check, deviations.

Records are written only by `services.py`, in the transaction of the pathway step they belong to,
and never updated in place except for a batch's status and a shipment's arrival (both audited).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from cartrial.domain.manufacturing import BatchStatus, FailureBranch


class IdentifierCounter(models.Model):
    """Last sequence number given per kind (CoI or DIN), FIN and year; locked by the allocating transaction."""

    kind = models.CharField(max_length=3, choices=[("coi", "CoI"), ("din", "DIN")])
    facility_number = models.CharField(max_length=5)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "facility_number", "year"], name="identifier_counter_unique")
        ]


class ChainOfIdentity(models.Model):
    """The patient therapy event's CoI, allocated before the first apheresis (logistics.md §6 rule 1)."""

    subject = models.OneToOneField("subjects.Subject", on_delete=models.PROTECT, related_name="chain_of_identity")
    content = models.CharField(max_length=15, unique=True)
    check_character = models.CharField(max_length=1)
    allocated_at = models.DateTimeField()
    allocated_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return self.content


class Collection(models.Model):
    """One apheresis collection, with its own DIN under the patient's CoI."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="collections")
    coi = models.ForeignKey(ChainOfIdentity, on_delete=models.PROTECT, related_name="collections")
    number = models.PositiveSmallIntegerField(help_text="1 for the first apheresis, 2 for a repeat...")
    din = models.CharField(max_length=13, unique=True)
    check_character = models.CharField(max_length=1)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    volume_ml = models.FloatField()
    tnc_e9 = models.FloatField(null=True, blank=True, help_text="Total nucleated cells ×10⁹")
    cd3_cells_e9 = models.FloatField(null=True, blank=True, help_text="CD3+ cells ×10⁹")
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "number"], name="collection_number_unique"),
            models.CheckConstraint(condition=Q(volume_ml__gt=0), name="collection_volume_positive"),
            models.CheckConstraint(condition=Q(ended_at__gte=F("started_at")), name="collection_ends_after_start"),
        ]


class ManufacturingBatch(models.Model):
    """One manufacturing run from one collection; a remanufacture is the next batch number."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="batches")
    coi = models.ForeignKey(ChainOfIdentity, on_delete=models.PROTECT, related_name="batches")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="batches")
    number = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=24, choices=[(s.value, s.value) for s in BatchStatus])
    received_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    qc_started_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_signature = models.ForeignKey(
        "accounts.ElectronicSignature", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_under_exception = models.BooleanField(default=False)
    failed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    oos_exception_signature = models.ForeignKey(
        "accounts.ElectronicSignature", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    oos_exception_justification = models.TextField(blank=True)
    branch = models.CharField(max_length=24, blank=True, choices=[(b.value, b.value) for b in FailureBranch])
    branch_decided_at = models.DateTimeField(null=True, blank=True)
    branch_decided_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    branch_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["subject", "number"], name="batch_number_unique")]


class QcResult(models.Model):
    """One release-test result as reported by the lab, judged against the specification."""

    batch = models.ForeignKey(ManufacturingBatch, on_delete=models.PROTECT, related_name="qc_results")
    test_code = models.CharField(max_length=32)
    value_text = models.CharField(max_length=32)
    value_number = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    specification = models.CharField(max_length=64)
    conforms = models.BooleanField()
    recorded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["recorded_at", "pk"]


class Shipment(models.Model):
    """Apheresis material to the lab, or the frozen product back to the center."""

    class Direction(models.TextChoices):
        TO_LAB = "to_lab", "Apheresis material to the lab"
        TO_CENTER = "to_center", "Product to the center"

    class Condition(models.TextChoices):
        FRESH = "fresh", "Fresh, 2–8 °C"
        CRYOPRESERVED = "cryopreserved", "Cryopreserved, LN2 vapour"

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="shipments")
    direction = models.CharField(max_length=12, choices=Direction.choices)
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    batch = models.ForeignKey(ManufacturingBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    item_code = models.CharField(max_length=15, help_text="DIN or CoI content of what travels")
    product_code = models.CharField(max_length=32, help_text="Protocol product whose limits apply")
    condition = models.CharField(max_length=16, choices=Condition.choices)
    courier = models.CharField(max_length=100)
    shipper_id = models.CharField(max_length=40)
    origin = models.ForeignKey("trial.Center", on_delete=models.PROTECT, related_name="+")
    destination = models.ForeignKey("trial.Center", on_delete=models.PROTECT, related_name="+")
    planned_departure_at = models.DateTimeField()
    planned_arrival_at = models.DateTimeField()
    actual_departure_at = models.DateTimeField()
    actual_arrival_at = models.DateTimeField(null=True, blank=True)
    arrival_confirmed = models.BooleanField(default=False, help_text="The courier confirmed the planned arrival")
    created_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["actual_departure_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(planned_arrival_at__gte=F("planned_departure_at")), name="shipment_planned_order"
            ),
            models.CheckConstraint(
                condition=Q(actual_arrival_at__isnull=True) | Q(actual_arrival_at__gte=F("actual_departure_at")),
                name="shipment_actual_order",
            ),
        ]


class TemperatureLog(models.Model):
    """A data-logger file imported for a shipment, its readings (UTC) and the excursions found."""

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="temperature_logs")
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    logger_time_zone = models.CharField(max_length=64)
    source_unit = models.CharField(max_length=4)
    readings_json = models.TextField(help_text="[[ISO time UTC, °C, line], ...]")
    excursions_json = models.TextField(help_text="Excursions against the product's limits at import")
    min_temperature_c = models.FloatField()
    max_temperature_c = models.FloatField()
    limit_min_c = models.FloatField()
    limit_max_c = models.FloatField()
    reading_count = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "pk"]


class CustodyRecord(models.Model):
    """One accepted hand-over of one item (a collection's material or a product batch)."""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="custody_records")
    item_id = models.CharField(max_length=40, db_index=True)
    item_code = models.CharField(max_length=15, help_text="The DIN or CoI the item carries")
    # NULL (not '') is the domain's "enters custody": the first record of an item has no giver.
    from_holder = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001
    to_holder = models.CharField(max_length=120)
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    location = models.CharField(max_length=200)
    scanned_code = models.CharField(max_length=40)
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class ProductReceipt(models.Model):
    """The product received at the center's pharmacy, and where it is stored."""

    shipment = models.OneToOneField(Shipment, on_delete=models.PROTECT, related_name="receipt")
    batch = models.ForeignKey(ManufacturingBatch, on_delete=models.PROTECT, related_name="receipts")
    received_at = models.DateTimeField()
    received_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    storage_location = models.CharField(max_length=100)
    scanned_code = models.CharField(max_length=40)


class Thaw(models.Model):
    """The product thawed before infusion; the protocol limits the time from thaw to infusion."""

    batch = models.ForeignKey(ManufacturingBatch, on_delete=models.PROTECT, related_name="thaws")
    thawed_at = models.DateTimeField()
    thawed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    scanned_code = models.CharField(max_length=40)
    max_thaw_to_infusion_min = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["thawed_at", "pk"]


class Infusion(models.Model):
    """The infusion after the two-person bedside check: who scanned what, both signatures."""

    batch = models.OneToOneField(ManufacturingBatch, on_delete=models.PROTECT, related_name="infusion")
    thaw = models.ForeignKey(Thaw, on_delete=models.PROTECT, related_name="+")
    infused_at = models.DateTimeField()
    minutes_from_thaw = models.FloatField()
    first_checker = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    first_bag_code = models.CharField(max_length=40)
    first_wristband_code = models.CharField(max_length=40)
    first_signature = models.ForeignKey("accounts.ElectronicSignature", on_delete=models.PROTECT, related_name="+")
    second_checker = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    second_bag_code = models.CharField(max_length=40)
    second_wristband_code = models.CharField(max_length=40)
    second_signature = models.ForeignKey("accounts.ElectronicSignature", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(first_checker=F("second_checker")), name="infusion_two_people")
        ]


class Deviation(models.Model):
    """Something that must not happen and did, or was stopped: recorded even when the step was refused.

    What it says is `code` and `params` (rendered in each reader's language by
    `domain.deviations.deviation_message`); `message` keeps the English text as recorded, for the
    audit trail and for rows written before parameters were stored. Then people manage it:
    acknowledged, commented, closed with a reason (`domain.deviations.deviation_move`).
    """

    class Kind(models.TextChoices):
        SCAN_MISMATCH = "scan_mismatch", "Scanned code does not match"
        BEDSIDE_MISMATCH = "bedside_mismatch", "Bedside identity mismatch"
        TEMPERATURE_EXCURSION = "temperature_excursion", "Temperature excursion"
        TRANSIT_TIME = "transit_time", "Transit time beyond the product's limit"

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="deviations")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    code = models.CharField(max_length=40)
    step = models.CharField(max_length=40, blank=True)
    expected = models.CharField(max_length=60, blank=True)
    scanned = models.CharField(max_length=60, blank=True)
    params = models.JSONField(default=dict, blank=True)
    message = models.TextField()
    actor = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    at = models.DateTimeField()
    location = models.CharField(max_length=200, blank=True)
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=16, default="open", db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    closing_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]


class DeviationComment(models.Model):
    """What someone wrote about a deviation (investigation, corrective action); never edited."""

    deviation = models.ForeignKey(Deviation, on_delete=models.PROTECT, related_name="comments")
    text = models.TextField()
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=32)
    move = models.CharField(max_length=16, help_text="acknowledge, comment, close or reopen")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]
