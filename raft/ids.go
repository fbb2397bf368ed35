package raft

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
)

// NewTopicID returns a random topic ID. Like Kafka's Uuid.randomUuid it
// never returns the reserved all-zero ID (Kafka's "no topic id") or the
// metadata topic's ID (0...01), and never one whose base64url form starts
// with '-' (awkward on command lines).
func NewTopicID() [16]byte {
	for {
		var id [16]byte
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
		if id == ([16]byte{}) || id == ([16]byte{15: 1}) || id[0]>>2 == 62 {
			continue
		}
		return id
	}
}

// NewClusterID returns a fresh cluster id: 16 random bytes as 22 characters
// of unpadded base64url, the form of Kafka's cluster ids.
func NewClusterID() string {
	id := NewTopicID()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// FormatID renders a topic ID the way Kafka prints UUIDs (unpadded base64url).
func FormatID(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// PlacementStart is the rotation start of a topic's replica placement
// (PlaceReplicas), derived from its ID: KRaft starts at a random position so
// that topics spread over brokers; a start taken from the (random) topic ID
// spreads them the same way and stays reproducible.
func PlacementStart(id [16]byte) int { return int(id[1]) }

// NewCreateTopic builds the CreateTopic command the broker proposes for a
// CreateTopics request: a fresh topic ID (which makes the command
// idempotent under retry), replicas placed by PlaceReplicas (rack-aware;
// round-robin over the unfenced brokers in id order when no broker has a
// rack) starting at a position derived from the topic ID, ISR = replicas, leader = first replica, LeaderEpoch 0,
// PartitionEpoch 0. configs is copied. Set Topic.Internal on the result for
// internal topics.
func NewCreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, brokers []Broker) (CreateTopic, error) {
	id := NewTopicID()
	assign, err := PlaceReplicas(brokers, 0, partitions, replicationFactor, PlacementStart(id))
	if err != nil {
		return CreateTopic{}, fmt.Errorf("create topic %q: %w", name, err)
	}
	tp := Topic{Name: name, ID: id, Partitions: make([]Partition, partitions)}
	for i, r := range assign {
		tp.Partitions[i] = Partition{Index: int32(i), Replicas: r, ISR: slices.Clone(r), Leader: r[0]}
	}
	if len(configs) > 0 {
		tp.Configs = make(map[string]string, len(configs))
		for k, v := range configs {
			tp.Configs[k] = v
		}
	}
	return CreateTopic{Topic: tp}, nil
}
