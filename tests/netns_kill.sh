#!/bin/bash
# tests/netns_kill.sh: tests/netns.sh's kill scenario (an inventory replica
# killed with reservations in flight); see there.
NETNS_SCENARIO=kill exec bash "$(dirname "$0")/netns.sh"
