"""What can go wrong with checkpoints and their archives, in the families of luxsite.errors."""

from luxsite.errors import Invalid


class ArchiveInvalidError(Invalid):
    """A checkpoint archive refused on reading; the subclasses say why."""

    code = "archive_invalid"


class ArchiveCorruptError(ArchiveInvalidError):
    code = "archive_corrupt"


class ArchiveVersionError(ArchiveInvalidError):
    code = "archive_version_unknown"


class ArchiveMemberError(ArchiveInvalidError):
    code = "archive_member_invalid"


class ArchiveDigestError(ArchiveInvalidError):
    code = "archive_digest_mismatch"


class ArchiveTooLargeError(ArchiveInvalidError):
    code = "archive_too_large"


class ArchiveContentError(ArchiveInvalidError):
    code = "archive_content_invalid"
