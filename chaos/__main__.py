from chaos._cli import main

raise SystemExit(main())
