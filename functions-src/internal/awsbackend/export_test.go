package awsbackend

import "time"

// SetPITRRetry shortens the wait for a new table's backups, for tests; it
// returns the function that restores the defaults.
func SetPITRRetry(every, limit time.Duration) (restore func()) {
	e, l := pitrRetryEvery, pitrRetryFor
	pitrRetryEvery, pitrRetryFor = every, limit
	return func() { pitrRetryEvery, pitrRetryFor = e, l }
}
