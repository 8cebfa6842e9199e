import sys

from souverain.cli.main import main

sys.exit(main())
