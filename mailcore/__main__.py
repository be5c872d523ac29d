"""`python -m mailcore COMMAND`: see mailcore.cli.main."""
from mailcore.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
