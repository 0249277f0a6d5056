from tests.audit.governance import (  # noqa: F401
    auditor,
    governance_keys,
    officer,
    other_roles,
    stepped_up,
)
from tests.payments.fixtures import saved_card, thousand_sek_invoice  # noqa: F401
