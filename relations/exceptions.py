from luxsite.errors import Invalid, NotFound


class RelationshipNotFoundError(NotFound):
    code = "relationship_not_found"


class SelfLinkError(Invalid):
    code = "self_link"


class RelationshipInvalidError(Invalid):
    code = "relationship_invalid"
