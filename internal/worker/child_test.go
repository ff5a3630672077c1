package worker_test

// envChild makes TestMain run the worker as a child process (see
// TestWorkerSurvivesKill9).
const envChild = "OUTBOXD_TEST_CHILD"

func childMain() int { return 0 }
