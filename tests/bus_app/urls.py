from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("accounts/", apis.AccountOpenApi.as_view(), name="bus-account-open"),
    path("accounts/<uuid:account_id>/", apis.AccountDetailApi.as_view(), name="bus-account-detail"),
    path("accounts/<uuid:account_id>/deposit/", apis.AccountDepositApi.as_view(), name="bus-account-deposit"),
    path("accounts/<uuid:account_id>/withdraw/", apis.AccountWithdrawApi.as_view(), name="bus-account-withdraw"),
]
