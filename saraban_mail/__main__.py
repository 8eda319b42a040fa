from saraban_mail.cli import main

raise SystemExit(main())
