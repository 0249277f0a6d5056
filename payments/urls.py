"""Payments URLs outside the portal's own prefix: the old card page's address, kept working.

Adding a card is one page with the saved cards (``portal_pay:cards``, /portal/cards/):
the same encrypted form and the same rule for saving as paying with "save this card".
"""

from django.urls import path
from django.views.generic import RedirectView

app_name = "payments"

urlpatterns = [
    path("cards/new/", RedirectView.as_view(pattern_name="portal_pay:cards"), name="add_card"),
]
