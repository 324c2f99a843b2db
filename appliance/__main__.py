"""`python -m appliance` is the `pbx` command."""

from appliance.cli import main

raise SystemExit(main())
