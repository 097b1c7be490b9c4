"""The forms of the merge pages: they parse text; the services validate the merge and each value."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from chronos.models import NAME_MAX_LENGTH, Merge, MergeConflict


class MergeForm(forms.Form):
    source = forms.CharField(max_length=NAME_MAX_LENGTH, label="Merge timeline")
    into = forms.CharField(max_length=NAME_MAX_LENGTH, label="Into", help_text="The live timeline.")
    strategy = forms.ChoiceField(
        choices=Merge.Strategy.choices,
        initial=Merge.Strategy.FIELD,
        help_text="field: key by key; row: any row changed on both sides conflicts; ours / theirs: that side wins.",
    )


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=MergeConflict.Resolution.choices, widget=forms.RadioSelect)
    value = forms.CharField(
        required=False,
        label="Edited value (JSON)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def clean_value(self) -> Any:
        text = self.cleaned_data["value"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"not JSON: {error.msg} at character {error.pos}") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("resolution") == MergeConflict.Resolution.VALUE and not self.data.get("value", "").strip():
            self.add_error("value", "an edited value needs the value, as JSON")
        return cleaned
