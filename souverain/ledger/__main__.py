import sys

from souverain.ledger.cli import main

sys.exit(main())
