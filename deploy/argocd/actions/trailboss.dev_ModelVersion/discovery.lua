-- Argo CD actions on a trailboss.dev ModelVersion (its spec is immutable): while its
-- deletion waits (the registry is unreachable, or a Deployment still serves it),
-- release-finalizer lets it go, leaving the registry entry as it is.
local actions = {}
local deleting = obj.metadata.deletionTimestamp ~= nil
local released = obj.metadata.annotations ~= nil
    and obj.metadata.annotations["trailboss.dev/release-finalizer"] == "true"
actions["release-finalizer"] = {
  ["disabled"] = not deleting or released, ["iconClass"] = "fa fa-fw fa-unlock"
}
return actions
