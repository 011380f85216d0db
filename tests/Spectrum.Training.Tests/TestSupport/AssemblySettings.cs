// Runs the tests one at a time: torch's global generator (dropout, init) is shared process state.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
