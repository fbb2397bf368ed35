package broker

// open opens raft and the partition manager. Placeholder until the storage and
// raft packages are merged.
func (b *Broker) open() error { return nil }

// closeState closes the partition logs and raft.
func (b *Broker) closeState() error { return nil }
