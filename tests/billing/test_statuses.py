"""What each billing mode means for the invoice (SPEC D1, D2, D6): charged, invoiced, taxed, refundable."""

from __future__ import annotations

import pytest

from billing.statuses import BillingMode

# mode: (charged to the card, invoiced, taxable, refundable)
MODES = {
    BillingMode.CARD: (True, False, True, True),
    BillingMode.SUBSCRIPTION: (False, True, True, True),
    BillingMode.MARKETPLACE: (False, True, False, True),  # the marketplace taxes its own invoice
    BillingMode.ACTIVATION_HOLD: (False, False, True, True),
    BillingMode.GRACE_CHARGE: (True, False, True, False),  # D2: a code applied too late refunds nothing
}


@pytest.mark.parametrize("mode", list(BillingMode))
def test_what_each_billing_mode_means(mode):
    assert (mode.charged_to_card, mode.invoiced, mode.taxable, mode.refundable) == MODES[mode]


def test_billing_modes_are_stored_by_these_names():
    assert [mode.value for mode in BillingMode] == ["card", "subscription", "marketplace", "activation_hold",
                                                    "grace_charge"]
