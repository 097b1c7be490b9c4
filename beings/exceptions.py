"""What can go wrong with beings, in the families of luxsite.errors."""

from luxsite.errors import Conflict, Invalid, NotFound, PermissionDenied, TooLarge


class BeingNotFoundError(NotFound):
    code = "being_not_found"


class GenesisInvalidError(Invalid):
    code = "genesis_invalid"


class SourceSyntaxError(Invalid):
    code = "source_syntax_error"


class EnergyWriteError(Invalid):
    code = "energy_not_writable"


class LineageForeignError(PermissionDenied):
    code = "lineage_foreign"


class TagsInvalidError(Invalid):
    code = "tags_invalid"


class DocumentTooLargeError(TooLarge):
    code = "document_too_large"


class CoreBeingError(Conflict):
    code = "core_being"


class BeingHasRelationshipsError(Conflict):
    code = "being_has_relationships"


class BeingExistsError(Conflict):
    code = "being_exists"


class ImportLineError(Invalid):
    code = "import_invalid"


class HashMismatchError(Invalid):
    code = "hash_mismatch"


class HashInvalidError(Invalid):
    code = "hash_invalid"


class SoulNotFoundError(NotFound):
    code = "soul_not_found"


class AliasNotFoundError(NotFound):
    code = "alias_not_found"


class HashAmbiguousError(Conflict):
    code = "hash_ambiguous"


class NothingChangedError(Conflict):
    code = "nothing_changed"


class GenotypeChangeError(Conflict):
    code = "genotype_change"


class LineageBrokenError(Conflict):
    code = "lineage_broken"


class EnvironmentUnknownError(Invalid):
    code = "environment_unknown"


class AliasInvalidError(Invalid):
    code = "alias_invalid"


class HashHeldByManyError(Conflict):
    code = "hash_held_by_many"


class OwnerChangeUnconfirmedError(Conflict):
    code = "owner_change_unconfirmed"


class AlreadyPromotedError(Conflict):
    code = "already_promoted"


class NotPromotedError(Conflict):
    code = "not_promoted"


class AliasNotPromotedError(NotFound):
    code = "not_promoted"


class PromotionNoteInvalidError(Invalid):
    code = "note_invalid"


class PromotionLineageError(Conflict):
    code = "promotion_lineage_mismatch"


class PromotionEvidenceMissingError(Conflict):
    code = "promotion_evidence_missing"


class OverrideReasonInvalidError(Invalid):
    code = "override_reason_invalid"


class ExecutionNotFoundError(NotFound):
    code = "execution_not_found"


class ExecutionFinishedError(Conflict):
    code = "execution_finished"


class BeingNotRunnableError(Conflict):
    code = "not_runnable"


class ExecutionInputInvalidError(Invalid):
    code = "execution_input_invalid"


class TargetInvalidError(Invalid):
    code = "target_invalid"
