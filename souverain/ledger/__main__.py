import sys

from souverain.cli.ledger import main

sys.exit(main())
