-- Resume a paused rollout: the pause annotation goes.
if obj.metadata.annotations ~= nil then
  obj.metadata.annotations["trailboss.dev/paused"] = nil
  if next(obj.metadata.annotations) == nil then
    obj.metadata.annotations = nil
  end
end
return obj
