//! Planner tests: see the submodules.
