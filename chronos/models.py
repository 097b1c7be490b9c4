"""The change log: every row change of the two tables, in one global order, with its context."""

from django.db import models

from luxsite.triggers import append_only


class Change(models.Model):
    """One captured row change, written only by the capture triggers; never updated, deleted or truncated."""

    class Operation(models.TextChoices):
        INSERT = "INSERT"
        UPDATE = "UPDATE"
        DELETE = "DELETE"

    id = models.BigAutoField(primary_key=True)
    table = models.TextField()
    row_id = models.UUIDField()
    operation = models.TextField(choices=Operation.choices)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    # Who, through which door, why: set by chronos.context for the transaction.
    context = models.JSONField(default=dict)
    transaction_id = models.BigIntegerField()
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "chronos_change"
        ordering = ["id"]
        triggers = append_only()
        indexes = [
            models.Index(fields=["table", "row_id", "id"], name="chronos_change_row"),
            models.Index(fields=["transaction_id"], name="chronos_change_txid"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.operation} {self.table} {self.row_id}"
