-- Resume a suspended TrainingRun: the operator resumes its Job.
obj.spec.suspend = false
return obj
