package broker

// DescribeUserScramCredentials v0 and AlterUserScramCredentials v0
// (KIP-554): the SCRAM user database in the raft state, as Kafka's
// ScramImage and ScramControlManager serve it.
//
// Describe lists every user with credentials when no user is named; a
// named user without credentials is RESOURCE_NOT_FOUND, a user named twice
// DUPLICATE_RESOURCE. Alter validates every deletion and upsertion first:
// a user altered twice in one request is DUPLICATE_RESOURCE (for all its
// entries), an empty name UNACCEPTABLE_CREDENTIAL, an unknown mechanism
// UNSUPPORTED_SASL_MECHANISM, iterations outside 4096..16384
// UNACCEPTABLE_CREDENTIAL, deleting an absent credential
// RESOURCE_NOT_FOUND. Upsertions carry the client-side salted password;
// the broker stores only StoredKey and ServerKey derived from it.
//
// Differences from Kafka: results come in request order (Kafka's order is
// a hash map's); the valid alterations are applied as independent raft
// commands rather than one atomic batch (each is idempotent and a failure
// is reported on its own user); an empty salt or salted password is
// UNACCEPTABLE_CREDENTIAL (Kafka fails deriving keys from it with
// UNKNOWN_SERVER_ERROR).
//
// ACLs: Describe needs DESCRIBE on the cluster (else a top-level
// CLUSTER_AUTHORIZATION_FAILED), Alter ALTER on the cluster (else every
// user named gets CLUSTER_AUTHORIZATION_FAILED), as in Kafka.

import (
	"context"
	"errors"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeUserSCRAMCredentialsRequest{}, 0, 0, (*Broker).handleDescribeUserSCRAMCredentials)
	register(&kmsg.AlterUserSCRAMCredentialsRequest{}, 0, 0, (*Broker).handleAlterUserSCRAMCredentials)
}

func (b *Broker) handleDescribeUserSCRAMCredentials(rq *request, req *kmsg.DescribeUserSCRAMCredentialsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !b.authorizedCluster(rq, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	st := b.node.State()
	creds := map[string][]kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo{}
	for k, c := range st.SCRAM {
		ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		ci.Mechanism, ci.Iterations = int8(k.Mechanism), c.Iterations
		creds[k.User] = append(creds[k.User], ci)
	}
	for _, infos := range creds {
		sort.Slice(infos, func(i, j int) bool { return infos[i].Mechanism < infos[j].Mechanism })
	}
	var users []string
	count := map[string]int{}
	if len(req.Users) == 0 {
		for u := range creds {
			users = append(users, u)
		}
		sort.Strings(users)
	} else {
		for _, u := range req.Users {
			if count[u.Name]++; count[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
	}
	for _, u := range users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = u
		switch {
		case count[u] > 1:
			r.ErrorCode = kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + u)
		case len(creds[u]) == 0:
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + u)
		default:
			r.CredentialInfos = creds[u]
		}
		resp.Results = append(resp.Results, r)
	}
	return now(resp)
}

// scramAlteration is one valid entry of an AlterUserScramCredentials
// request, ready to apply.
type scramAlteration struct {
	user string
	cmd  raft.Command
}

// scramAlterError is a user's failure in an AlterUserScramCredentials
// request.
type scramAlterError struct {
	code *kerr.Error
	msg  string
}

func validateSCRAMUserAndMechanism(user string, mech int8) *scramAlterError {
	if user == "" {
		return &scramAlterError{kerr.UnacceptableCredential, "Username must not be empty"}
	}
	if scramByCode(mech) == nil {
		return &scramAlterError{kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism"}
	}
	return nil
}

func (b *Broker) handleAlterUserSCRAMCredentials(rq *request, req *kmsg.AlterUserSCRAMCredentialsRequest) reply {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !b.authorizedCluster(rq, opAlter) {
		// Kafka answers every named user with the cluster error.
		seen := map[string]bool{}
		deny := func(user string) {
			if seen[user] {
				return
			}
			seen[user] = true
			r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
			r.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
			resp.Results = append(resp.Results, r)
		}
		for _, d := range req.Deletions {
			deny(d.Name)
		}
		for _, u := range req.Upsertions {
			deny(u.Name)
		}
		return now(resp)
	}
	st := b.node.State()
	var order []string
	valid := map[string]scramAlteration{}
	failed := map[string]*scramAlterError{}
	// admit records user's entry unless the user already failed; a second
	// entry for a user fails both.
	admit := func(user string, validate func() (raft.Command, *scramAlterError)) {
		if failed[user] != nil {
			return
		}
		if _, dup := valid[user]; dup {
			delete(valid, user)
			failed[user] = &scramAlterError{kerr.DuplicateResource, "A user credential cannot be altered twice in the same request"}
			return
		}
		order = append(order, user)
		cmd, e := validate()
		if e != nil {
			failed[user] = e
			return
		}
		valid[user] = scramAlteration{user: user, cmd: cmd}
	}
	for _, d := range req.Deletions {
		admit(d.Name, func() (raft.Command, *scramAlterError) {
			if e := validateSCRAMUserAndMechanism(d.Name, d.Mechanism); e != nil {
				return nil, e
			}
			if _, ok := st.SCRAM[raft.SCRAMKey{User: d.Name, Mechanism: raft.SCRAMMechanism(d.Mechanism)}]; !ok {
				return nil, &scramAlterError{kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist"}
			}
			return raft.DeleteSCRAMCredential{User: d.Name, Mechanism: raft.SCRAMMechanism(d.Mechanism)}, nil
		})
	}
	for _, u := range req.Upsertions {
		admit(u.Name, func() (raft.Command, *scramAlterError) {
			if e := validateSCRAMUserAndMechanism(u.Name, u.Mechanism); e != nil {
				return nil, e
			}
			switch {
			case u.Iterations < scramMinIterations:
				return nil, &scramAlterError{kerr.UnacceptableCredential, "Too few iterations"}
			case u.Iterations > scramMaxIterations:
				return nil, &scramAlterError{kerr.UnacceptableCredential, "Too many iterations"}
			case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
				return nil, &scramAlterError{kerr.UnacceptableCredential, "Salt and salted password must not be empty"}
			}
			m := scramByCode(u.Mechanism)
			stored, server := m.keys(u.SaltedPassword)
			return raft.UpsertSCRAMCredential{User: u.Name, Mechanism: m.code, Salt: slices.Clone(u.Salt),
				StoredKey: stored, ServerKey: server, Iterations: u.Iterations}, nil
		})
	}
	var users []string
	var cmds []raft.Command
	for _, user := range order {
		if a, ok := valid[user]; ok {
			users = append(users, user)
			cmds = append(cmds, a.cmd)
		}
	}
	if len(cmds) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		_, errs := b.node.ApplyAll(ctx, cmds)
		cancel()
		for i, err := range errs {
			if err == nil {
				b.log.Info("altered SCRAM credential", "user", users[i], "command", cmds[i].Type())
				continue
			}
			code := metaErr(err)
			if errors.Is(err, raft.ErrUnknownSCRAMCredential) {
				code = kerr.ResourceNotFound
			}
			failed[users[i]] = &scramAlterError{code, err.Error()}
		}
	}
	for _, user := range order {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		if e := failed[user]; e != nil {
			r.ErrorCode = e.code.Code
			r.ErrorMessage = kmsg.StringPtr(e.msg)
		}
		resp.Results = append(resp.Results, r)
	}
	return now(resp)
}
