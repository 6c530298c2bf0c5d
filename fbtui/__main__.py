from fbtui.cli import main

raise SystemExit(main())
