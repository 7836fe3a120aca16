"""What the tests and the benchmarks both drive: a `wfm-pipeline dev` stack (``devstack``) and an in-process
pipeline installation (``workspace``). Depends on the product only; never on the tests or on bench."""
