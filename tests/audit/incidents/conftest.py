from tests.audit.governance import (  # noqa: F401
    auditor,
    governance_keys,
    officer,
    other_roles,
    stepped_up,
)
