package broker

// CreateAcls 0-3, DescribeAcls 0-3, DeleteAcls 0-3.
//
// ACL bindings live in the raft state (raft.CreateACLs / raft.DeleteACLs).
// As in Kafka, the three APIs need ALTER (create, delete) or DESCRIBE
// (describe) on the CLUSTER resource, and answer SECURITY_DISABLED when the
// broker runs without --authorizer. Validation follows Kafka's AclApis and
// AclControlManager: UNKNOWN/ANY/MATCH values, an empty resource name, a
// principal without "Type:" and a CLUSTER resource not named "kafka-cluster"
// are INVALID_REQUEST for that creation. Filters (describe, delete) treat
// null strings and ANY codes as wildcards; pattern type MATCH selects every
// binding that would apply to the named resource (the literal name, the
// literal "*" and prefixes of it). A delete proposes every binding its
// filters matched in one raft command, so it is all or nothing.
//
// A creation with a filter-only code (ANY, MATCH) fails the whole request
// with UNKNOWN_SERVER_ERROR for every creation, as Kafka 4.3.1 answers (its
// AclBinding constructor throws; seen by integration's TestACLEnforcement).
//
// Differences from Kafka: an empty host is INVALID_REQUEST (Kafka stores it
// and it never matches); codes Kafka does not know are answered like ANY in
// creations and INVALID_REQUEST in filters, where Kafka fails the request
// parse and closes the connection.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeACLsRequest{}, 0, 3, (*Broker).handleDescribeACLs)
	register(&kmsg.CreateACLsRequest{}, 0, 3, (*Broker).handleCreateACLs)
	register(&kmsg.DeleteACLsRequest{}, 0, 3, (*Broker).handleDeleteACLs)
}

// Kafka's filter codes: ANY matches every value; MATCH is a pattern type
// filter only.
const (
	aclAny      = 1
	patMatch    = int8(kmsg.ACLResourcePatternTypeMatch)
	maxACLOp    = int8(kmsg.ACLOperationDescribeTokens)
	maxACLResTy = int8(kmsg.ACLResourceTypeUser)
)

const securityDisabledMsg = "no authorizer is configured: start the broker with --authorizer"

// aclFilter is a decoded DescribeAcls / DeleteAcls filter. Nil strings and
// aclAny codes match everything.
type aclFilter struct {
	resourceType int8
	name         *string
	patternType  int8
	principal    *string
	host         *string
	operation    int8
	permission   int8
}

// validate reports why f cannot be evaluated (Kafka's "unknown" filters).
func (f aclFilter) validate() error {
	switch {
	case f.resourceType < aclAny || f.resourceType > maxACLResTy:
		return fmt.Errorf("unknown resource type %d in filter", f.resourceType)
	case f.patternType < aclAny || f.patternType > patPrefixed:
		return fmt.Errorf("unknown pattern type %d in filter", f.patternType)
	case f.operation < aclAny || f.operation > maxACLOp:
		return fmt.Errorf("unknown operation %d in filter", f.operation)
	case f.permission < aclAny || f.permission > permAllow:
		return fmt.Errorf("unknown permission type %d in filter", f.permission)
	}
	return nil
}

// matches reports whether binding a passes the filter, with Kafka's
// ResourcePatternFilter and AccessControlEntryFilter rules.
func (f aclFilter) matches(a raft.ACL) bool {
	if f.resourceType != aclAny && f.resourceType != a.ResourceType {
		return false
	}
	if f.patternType != aclAny && f.patternType != patMatch && f.patternType != a.PatternType {
		return false
	}
	if f.name != nil {
		name := *f.name
		if f.patternType == aclAny || f.patternType == a.PatternType {
			if name != a.ResourceName {
				return false
			}
		} else { // MATCH: bindings that would apply to the resource name
			switch a.PatternType {
			case patLiteral:
				if name != a.ResourceName && a.ResourceName != wildcard {
					return false
				}
			case patPrefixed:
				if !strings.HasPrefix(name, a.ResourceName) {
					return false
				}
			default:
				return false
			}
		}
	}
	return (f.principal == nil || *f.principal == a.Principal) &&
		(f.host == nil || *f.host == a.Host) &&
		(f.operation == aclAny || f.operation == a.Operation) &&
		(f.permission == aclAny || f.permission == a.Permission)
}

// concreteCodes reports whether a binding to be created has a concrete
// resource type, pattern type, operation and permission: no UNKNOWN, ANY or
// MATCH, and nothing outside Kafka's codes.
func concreteCodes(a raft.ACL) bool {
	return a.ResourceType >= resTopic && a.ResourceType <= maxACLResTy &&
		(a.PatternType == patLiteral || a.PatternType == patPrefixed) &&
		a.Operation >= opAll && a.Operation <= maxACLOp &&
		(a.Permission == permAllow || a.Permission == permDeny)
}

// validateNewACL applies Kafka's checks to a binding to be created.
func validateNewACL(a raft.ACL) error {
	switch {
	case a.ResourceType < resTopic || a.ResourceType > maxACLResTy:
		return fmt.Errorf("resource type %d cannot be stored in an ACL", a.ResourceType)
	case a.PatternType != patLiteral && a.PatternType != patPrefixed:
		return fmt.Errorf("pattern type %d cannot be stored in an ACL", a.PatternType)
	case a.Operation < opAll || a.Operation > maxACLOp:
		return fmt.Errorf("operation %d cannot be stored in an ACL", a.Operation)
	case a.Permission != permAllow && a.Permission != permDeny:
		return fmt.Errorf("permission type %d cannot be stored in an ACL", a.Permission)
	case a.ResourceName == "":
		return errors.New("empty resource name")
	case a.ResourceType == resCluster && a.ResourceName != clusterResource:
		return fmt.Errorf("cluster resource %q: the cluster is named %s", a.ResourceName, clusterResource)
	case !strings.Contains(a.Principal, ":"):
		return fmt.Errorf("principal %q is not of the form Type:name", a.Principal)
	case a.Host == "":
		return errors.New("empty host")
	}
	return nil
}

func (b *Broker) handleCreateACLs(rq *request, req *kmsg.CreateACLsRequest) reply {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	fail := func(e *kerr.Error, msg string) reply {
		for range req.Creations {
			r := kmsg.NewCreateACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, r)
		}
		return now(resp)
	}
	if !b.authorizedCluster(rq, opAlter) {
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
	}
	if !b.authz.enabled {
		return fail(kerr.SecurityDisabled, securityDisabledMsg)
	}
	bindings := make([]raft.ACL, len(req.Creations))
	for i, c := range req.Creations {
		bindings[i] = raft.ACL{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName, PatternType: int8(c.ResourcePatternType),
			Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)}
		if !concreteCodes(bindings[i]) {
			return fail(kerr.UnknownServerError, fmt.Sprintf("creation %d is not a concrete ACL binding: %+v", i, bindings[i]))
		}
	}
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	var valid []raft.ACL
	var validIdx []int
	for i, a := range bindings {
		r := &resp.Results[i]
		*r = kmsg.NewCreateACLsResponseResult()
		if err := validateNewACL(a); err != nil {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
			continue
		}
		valid = append(valid, a)
		validIdx = append(validIdx, i)
	}
	if len(valid) == 0 {
		return now(resp)
	}
	if _, err := b.apply(context.Background(), raft.CreateACLs{ACLs: valid}); err != nil {
		e := metaErr(err)
		for _, i := range validIdx {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = e.Code, kmsg.StringPtr(fmt.Sprintf("create acls: %v", err))
		}
		return now(resp)
	}
	b.log.Info("created acls", "count", len(valid), "principal", rq.c.principal)
	return now(resp)
}

func (b *Broker) handleDescribeACLs(rq *request, req *kmsg.DescribeACLsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !b.authorizedCluster(rq, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	if !b.authz.enabled {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabledMsg)
		return now(resp)
	}
	f := aclFilter{resourceType: int8(req.ResourceType), name: req.ResourceName, patternType: int8(req.ResourcePatternType),
		principal: req.Principal, host: req.Host, operation: int8(req.Operation), permission: int8(req.PermissionType)}
	if err := f.validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		return now(resp)
	}
	// SortedACLs orders by resource first, so bindings of one resource
	// pattern are adjacent and group into one response resource.
	for _, a := range b.node.State().SortedACLs() {
		if !f.matches(a) {
			continue
		}
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != kmsg.ACLResourceType(a.ResourceType) ||
			resp.Resources[n-1].ResourceName != a.ResourceName ||
			resp.Resources[n-1].ResourcePatternType != kmsg.ACLResourcePatternType(a.PatternType) {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			resp.Resources = append(resp.Resources, res)
			n++
		}
		ra := kmsg.NewDescribeACLsResponseResourceACL()
		ra.Principal, ra.Host = a.Principal, a.Host
		ra.Operation, ra.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, ra)
	}
	return now(resp)
}

func (b *Broker) handleDeleteACLs(rq *request, req *kmsg.DeleteACLsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	fail := func(e *kerr.Error, msg string) reply {
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(msg)
			resp.Results = append(resp.Results, r)
		}
		return now(resp)
	}
	if !b.authorizedCluster(rq, opAlter) {
		return fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
	}
	if !b.authz.enabled {
		return fail(kerr.SecurityDisabled, securityDisabledMsg)
	}
	acls := b.node.State().SortedACLs()
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	var doomed []raft.ACL
	seen := map[raft.ACL]bool{}
	var matchedIdx []int
	for i, rf := range req.Filters {
		r := &resp.Results[i]
		*r = kmsg.NewDeleteACLsResponseResult()
		f := aclFilter{resourceType: int8(rf.ResourceType), name: rf.ResourceName, patternType: int8(rf.ResourcePatternType),
			principal: rf.Principal, host: rf.Host, operation: int8(rf.Operation), permission: int8(rf.PermissionType)}
		if err := f.validate(); err != nil {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
			continue
		}
		matchedIdx = append(matchedIdx, i)
		for _, a := range acls {
			if !f.matches(a) {
				continue
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host = a.Principal, a.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			r.MatchingACLs = append(r.MatchingACLs, m)
			if !seen[a] {
				seen[a] = true
				doomed = append(doomed, a)
			}
		}
	}
	if len(doomed) == 0 {
		return now(resp)
	}
	if _, err := b.apply(context.Background(), raft.DeleteACLs{ACLs: doomed}); err != nil {
		e := metaErr(err)
		for _, i := range matchedIdx {
			r := &resp.Results[i]
			r.ErrorCode, r.ErrorMessage = e.Code, kmsg.StringPtr(fmt.Sprintf("delete acls: %v", err))
			r.MatchingACLs = slices.Delete(r.MatchingACLs, 0, len(r.MatchingACLs))
		}
		return now(resp)
	}
	b.log.Info("deleted acls", "count", len(doomed), "principal", rq.c.principal)
	return now(resp)
}
