"""``python -m connectors``: the connector commands on their own."""

from connectors.commands import main

main()
