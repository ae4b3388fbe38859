// Package control is the control plane of a node: which namespace is live,
// the aggregator that follows it, the replay and verify jobs that build
// other namespaces, and the admin routes over them.
//
// A Runtime owns the node's current-namespace pointer. REST queries, the
// push hub (through Snapshot, DeltaLogKey and DeltaChannel) and the live
// aggregator all read the namespace it points to. Every node follows the
// registry (package namespace), polling it every second and at once after a
// promote it served itself, so a fleet of push and aggregate nodes switches
// without restarts.
//
// A switch is ordered so that nothing writes the old namespace once readers
// moved: the live aggregator stops (it commits whole batches only, so it
// can stop anywhere), the pointer swaps under the push hub (every
// subscription gets a reset snapshot of the new namespace), and a new
// aggregator starts on the new namespace from the positions stored there:
// those the replay that built it ended at. A promote is refused while a job
// still builds the namespace, or when the stream no longer holds the records
// after those positions (checkTail), since the aggregator could not continue
// without losing events.
//
// Jobs live in memory only: a replay's progress is in its namespace, so
// running it again after a restart resumes it.
//
// Work under a lease has one shape (RunInGroup): a lease manager takes the
// leases the worker lists as workable, the worker works those it holds
// (aggregator.Aggregator.RunLeased, archiver.Archiver.RunLeased), and the
// node leaves the group once the worker stopped.
package control
