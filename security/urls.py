"""Sign-in, MFA, account and password URLs (mounted at /account/)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from security import views

app_name = "security"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("verify/", views.verify, name="verify"),
    path("step-up/", views.step_up, name="step_up"),
    path("", views.account, name="account"),
    path("mfa/totp/", views.enroll_totp, name="enroll_totp"),
    path("mfa/remove/", views.remove_device, name="remove_device"),
    path("mfa/backup-codes/", views.new_backup_codes, name="new_backup_codes"),
    path("sessions/<int:pk>/end/", views.end_session, name="end_session"),
    path("sessions/end-others/", views.end_other_sessions, name="end_other_sessions"),
    path("password/", views.password_change, name="password_change"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="security/reset_sent.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("unlock/", views.unlock, name="unlock"),
    path("users/<int:pk>/roles/", views.user_roles, name="user_roles"),
    path("users/<int:pk>/reset/", views.reset_credentials, name="reset_credentials"),
    path("role-grants/", views.role_grants, name="role_grants"),
]
