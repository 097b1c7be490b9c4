"""The forms of the lessons page: they parse text; the services and selectors validate the rest."""

from __future__ import annotations

from django import forms


class LessonSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search", help_text="English or Polish words.")
    being = forms.UUIDField(required=False, label="Being (soul)")
    hash = forms.CharField(required=False, max_length=64)
    tag = forms.CharField(required=False, max_length=64)
    since = forms.DateTimeField(required=False, help_text="Last seen at or after (2026-01-31 or 2026-01-31 12:00).")
    until = forms.DateTimeField(required=False, help_text="Last seen before.")
    open = forms.BooleanField(required=False, label="Open only")


class LessonForm(forms.Form):
    situation = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    action = forms.CharField(required=False)
    result = forms.CharField(required=False)
    feedback = forms.CharField(required=False, help_text="What to do next time.")
    tags = forms.CharField(required=False, help_text="Separated by commas.")
    being = forms.UUIDField(required=False, label="Being (soul)", help_text="The being it concerns, if one.")
