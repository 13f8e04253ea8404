"""The `captioner` command: argparse subcommands over typed library functions."""
