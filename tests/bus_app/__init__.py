"""A small test-only bounded context: accounts with deposits and withdrawals."""
