from maas.training.cli import main

raise SystemExit(main())
