"""The form of a being in the admin: the genesis split into fields, validated with the services' own rules."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from beings import kinds, services
from beings.evolution import being_evolve_check
from beings.models import BaseBeing
from luxsite.errors import DomainError
from luxsite.forms import CodeTextarea, PrettyJSONField, TagsField

# genesis.<key> named in a validation error -> the form field that holds it.
GENESIS_FORM_FIELDS = {"name": "name", "type": "kind", "source": "source", "description": "description"}


GENESIS_ERROR_KEY = re.compile(r"^genesis\.(\w+)")


class BeingForm(forms.ModelForm):
    """The fields a person edits; ``clean`` validates them with the service's own rules."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=[(kind, kind) for kind in kinds.KINDS], initial=kinds.FUNCTION)
    source = forms.CharField(
        required=False,
        strip=False,
        widget=CodeTextarea(rows=18),
        help_text="Python; a function being defines <code>def run(...)</code>.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(
        required=False, max_length=500, help_text="Why the source changes: kept in the lineage and the memories."
    )
    evolve_async = forms.BooleanField(
        required=False, label="Evolve in the background", help_text="Hand the new source to a worker (Celery)."
    )
    tags = TagsField()
    energy_level = forms.IntegerField(initial=0)
    attributes = PrettyJSONField(empty={}, help_text="A JSON object.")
    memories = PrettyJSONField(empty=[], help_text="A JSON array (an event log) or object.")
    self_awareness = PrettyJSONField(empty={}, help_text="A JSON object.")

    class Meta:
        model = BaseBeing
        fields = ("tags", "energy_level", "attributes", "memories", "self_awareness")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.being_data: dict[str, Any] = {}
        genesis = self.instance.genesis if not self.instance._state.adding else None
        if isinstance(genesis, dict):
            self.initial.update(
                name=genesis.get("name", ""),
                kind=genesis.get("type", kinds.FUNCTION),
                source=genesis.get("source", ""),
                description=genesis.get("description", ""),
            )

    def clean_source(self) -> str:
        # Browsers send textareas with CRLF; the stored source (and its hash) must not depend on that.
        return str(self.cleaned_data["source"]).replace("\r\n", "\n")

    @property
    def adding(self) -> bool:
        return bool(self.instance._state.adding)

    def genesis_build(self) -> dict[str, Any]:
        """The genesis these fields describe, keeping every key of the current one the form does not show.

        A being that exists keeps its current source here: its lineage (``ancestors``) rebuilds
        from that source, and a new one reaches the being only through ``being_evolve``.
        """
        genesis: dict[str, Any] = {} if self.adding else dict(self.instance.genesis or {})
        genesis.pop("hash", None)  # recomputed from the genotype the form describes
        genesis["name"] = self.cleaned_data["name"]
        genesis["type"] = self.cleaned_data["kind"]
        keys = ("source", "description") if self.adding else ("description",)
        for key in keys:
            if self.cleaned_data.get(key):
                genesis[key] = self.cleaned_data[key]
            else:
                genesis.pop(key, None)
        return genesis

    def source_new(self) -> str | None:
        """The source typed into the change form when it differs from the being's current one."""
        if self.adding or "source" not in self.cleaned_data:
            return None
        source = str(self.cleaned_data["source"])
        return None if source == self.instance.genesis.get("source", "") else source

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        candidates: dict[str, Any] = {}
        if all(name in cleaned for name in GENESIS_FORM_FIELDS.values()):
            candidates["genesis"] = self.genesis_build()
            source = self.source_new()
            if source is not None:
                # The refusals the evolution would meet, heard now; permission is the service's at save.
                try:
                    being_evolve_check(being=self.instance, source=source, actor=None)
                except DomainError as error:
                    self.add_error("source", self.error_words(error))
        for field in ("tags", "energy_level", "attributes", "memories", "self_awareness"):
            if field in cleaned:
                candidates[field] = cleaned[field]
        # One field at a time, so that each error lands next to the field it is about.
        for field, value in candidates.items():
            try:
                self.being_data.update(services.being_clean({field: value}, partial=True))
            except DomainError as error:
                self.add_error(self.error_field(field, error), self.error_words(error))
        return cleaned

    @staticmethod
    def error_field(field: str, error: DomainError) -> str | None:
        if field != "genesis":
            return field
        match = GENESIS_ERROR_KEY.match(error.detail)
        return GENESIS_FORM_FIELDS.get(match.group(1)) if match else None

    def error_words(self, error: DomainError) -> str:
        """A service's refusal in the form's words: the field's label, not the genesis key behind it."""
        match = GENESIS_ERROR_KEY.match(error.detail)
        field = GENESIS_FORM_FIELDS.get(match.group(1)) if match else None
        if match is None:
            return error.detail
        if field is None:
            # Keys the form does not show (the lineage): the stored being, not what was typed, is at fault.
            return "This being's stored history does not check out, so this form cannot save it."
        return f"{self.fields[field].label or field.capitalize()}{error.detail[match.end() :]}"

    def changed_being_data(self) -> dict[str, Any]:
        """The validated fields the person changed (genesis when its metadata changed; a new source evolves)."""
        changed = set(self.changed_data)
        if changed & (set(GENESIS_FORM_FIELDS.values()) - {"source"}):
            changed.add("genesis")
        return {field: value for field, value in self.being_data.items() if field in changed}

    def _post_clean(self) -> None:
        """Nothing: the services validate and write beings; the form never builds the model itself."""
