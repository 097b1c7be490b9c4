"""The forms of chronos' pages: they parse text, the services validate it (names, points, permissions)."""

from __future__ import annotations

from django import forms

from chronos.models import NAME_MAX_LENGTH


class CheckpointForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, help_text="Unique on the live timeline.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class TimelineForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    from_checkpoint = forms.CharField(
        required=False,
        label="From checkpoint",
        help_text="An id, an id prefix or a name on the live timeline; empty: from now.",
    )
    description = forms.CharField(required=False)


class TravelForm(forms.Form):
    """The confirmation of a restore or a switch; ``force`` when it deletes the being behind a promotion."""

    confirm = forms.BooleanField(required=True, widget=forms.HiddenInput, initial=True)
    force = forms.BooleanField(
        required=False, label="Also when it deletes the being behind an active promotion (production keeps running)"
    )


class ImportForm(forms.Form):
    archive = forms.FileField(help_text="A checkpoint archive (.tar or .tar.gz) made by an export.")
    timeline = forms.CharField(max_length=NAME_MAX_LENGTH, help_text="The new timeline it becomes.")
