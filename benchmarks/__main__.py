from __future__ import annotations

if __name__ == "__main__":
    from .run import main

    raise SystemExit(main())
