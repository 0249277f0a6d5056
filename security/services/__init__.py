"""Every state change of the security app, one module per sub-domain:

- ``passwords``: the password history, a change, a reset;
- ``lockout``: failed logins audited, an account unlocked, dormant staff disabled;
- ``mfa``: step-up, TOTP enrollment, backup codes, passkeys, verifying a code, removing
  a device;
- ``sessions``: signed-in sessions listed, rotated, touched and ended;
- ``roles``: roles given and taken (four eyes for the sensitive ones), the matrix synced;
- ``alerts``: security alerts raised, emailed and resolved;
- ``job_attempts``: old background-job attempts deleted;
- ``demo``: the demo's published second factors.

Each function owns its transaction and writes its audit event in it. None ever records a
secret (a password, an OTP secret or code, a session key).

Callers use this package, as billing's: ``from security import services``;
``services.change_password(...)``. Inside ``security/services/`` a module imports the one
it needs.
"""

from security.services.alerts import (
    email_security_alert,
    raise_security_alert,
    resolve_security_alert,
)
from security.services.demo import ensure_demo_second_factor
from security.services.job_attempts import purge_job_attempts, register_job_attempts_schedule
from security.services.lockout import (
    disable_dormant_staff,
    record_address_blocked,
    record_lockout,
    register_dormant_staff_schedule,
    unlock_account,
)
from security.services.mfa import (
    confirm_totp_device,
    mark_session_verified,
    record_passkey_registered,
    regenerate_backup_codes,
    remove_device,
    require_step_up,
    start_totp_enrollment,
    verify_second_factor,
)
from security.services.passwords import (
    change_password,
    record_password_reset_requested,
    remember_password,
    reset_password,
)
from security.services.roles import decide_role_grant, set_user_roles, sync_roles
from security.services.sessions import (
    end_other_sessions,
    end_session,
    forget_user_session,
    rotate_session_key,
    start_user_session,
    touch_user_session,
)

__all__ = [
    "change_password",
    "confirm_totp_device",
    "decide_role_grant",
    "disable_dormant_staff",
    "email_security_alert",
    "end_other_sessions",
    "end_session",
    "ensure_demo_second_factor",
    "forget_user_session",
    "mark_session_verified",
    "purge_job_attempts",
    "raise_security_alert",
    "record_address_blocked",
    "record_lockout",
    "record_passkey_registered",
    "record_password_reset_requested",
    "regenerate_backup_codes",
    "register_dormant_staff_schedule",
    "register_job_attempts_schedule",
    "remember_password",
    "remove_device",
    "require_step_up",
    "reset_password",
    "resolve_security_alert",
    "rotate_session_key",
    "set_user_roles",
    "start_totp_enrollment",
    "start_user_session",
    "sync_roles",
    "touch_user_session",
    "unlock_account",
    "verify_second_factor",
]
