"""The agent's overlay (PyQt6), installed as `agent_assist.ui`. Importing this package does not
import Qt; `agent_assist.ui.app` and `agent_assist.ui.overlay` do."""
