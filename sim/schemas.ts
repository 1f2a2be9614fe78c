// One description of every kind kube-sim serves and the types inside them, read by three consumers: the
// protobuf codec (sim/protobuf.ts: field numbers and wire types), OpenAPI v2/v3 (sim/openapi.ts: names and
// JSON types, for kubectl's validation and `explain`), and fieldValidation (unknownFields(): what a real
// server drops from a request body and reports). Field names, numbers, JSON names and whether a scalar is a
// pointer follow the Kubernetes 1.35 API types (k8s.io/api v0.35, apimachinery meta/v1).
//
// Notation, one field per word: `name:type=number`; `*` repeated, `?` a pointer scalar (its zero value is
// kept), `~` inline (its fields sit in the parent's JSON object, its own protobuf message on the wire),
// `{T}` a map of string to T. Scalars: string, int, bool, bytes, double. Types with a JSON form of their own:
// Time, MicroTime (RFC 3339), Quantity (a string), IntOrString, RawExtension and FieldsV1 (embedded JSON).

export type Scalar = "string" | "int" | "bool" | "bytes" | "double";

export interface Field {
  /** The JSON name (for an inline field: the name of its message, for messages only). */
  name: string;
  num: number;
  /** A scalar or a message name. */
  type: string;
  repeated: boolean;
  pointer: boolean;
  inline: boolean;
  map: boolean;
}

export const SCALARS: ReadonlySet<string> = new Set(["string", "int", "bool", "bytes", "double"]);
/** Messages with a JSON form of their own (a string, a number or embedded JSON): leaves for validation. */
export const SPECIAL: ReadonlySet<string> = new Set([
  "Time",
  "MicroTime",
  "Quantity",
  "IntOrString",
  "RawExtension",
  "FieldsV1",
  "ExtraValue",
]);

const TEXT: Record<string, string> = {
  // meta/v1 and runtime
  Unknown: `typeMeta:TypeMeta=1 raw:bytes=2 contentEncoding:string=3 contentType:string=4`,
  TypeMeta: `apiVersion:string=1 kind:string=2`,
  Time: `seconds:int=1 nanos:int=2`,
  MicroTime: `seconds:int=1 nanos:int=2`,
  Quantity: `string:string=1`,
  IntOrString: `type:int=1 intVal:int=2 strVal:string=3`,
  RawExtension: `raw:bytes=1`,
  FieldsV1: `raw:bytes=1`,
  ExtraValue: `*items:string=1`,
  ObjectMeta: `
    name:string=1 generateName:string=2 namespace:string=3 selfLink:string=4 uid:string=5
    resourceVersion:string=6 generation:int=7 creationTimestamp:Time=8 deletionTimestamp:Time=9
    deletionGracePeriodSeconds?:int=10 labels:{string}=11 annotations:{string}=12
    *ownerReferences:OwnerReference=13 *finalizers:string=14 *managedFields:ManagedFieldsEntry=17`,
  OwnerReference: `
    apiVersion:string=5 kind:string=1 name:string=3 uid:string=4 controller?:bool=6
    blockOwnerDeletion?:bool=7`,
  ManagedFieldsEntry: `
    manager:string=1 operation:string=2 apiVersion:string=3 time:Time=4 fieldsType:string=6
    fieldsV1:FieldsV1=7 subresource:string=8`,
  ListMeta: `selfLink:string=1 resourceVersion:string=2 continue:string=3 remainingItemCount?:int=4`,
  LabelSelector: `matchLabels:{string}=1 *matchExpressions:LabelSelectorRequirement=2`,
  LabelSelectorRequirement: `key:string=1 operator:string=2 *values:string=3`,
  FieldSelectorRequirement: `key:string=1 operator:string=2 *values:string=3`,
  Condition: `
    type:string=1 status:string=2 observedGeneration:int=3 lastTransitionTime:Time=4 reason:string=5
    message:string=6`,
  Preconditions: `uid?:string=1 resourceVersion?:string=2`,
  DeleteOptions: `
    gracePeriodSeconds?:int=1 preconditions:Preconditions=2 orphanDependents?:bool=3
    propagationPolicy?:string=4 *dryRun:string=5 ignoreStoreReadErrorWithClusterBreakingPotential?:bool=6`,
  Status: `
    metadata:ListMeta=1 status:string=2 message:string=3 reason:string=4 details:StatusDetails=5
    code:int=6`,
  StatusDetails: `
    name:string=1 group:string=2 kind:string=3 uid:string=6 *causes:StatusCause=4
    retryAfterSeconds:int=5`,
  StatusCause: `reason:string=1 message:string=2 field:string=3`,
  // k8s.io/api: the served kinds and everything they contain
  Node: `metadata:ObjectMeta=1 spec:NodeSpec=2 status:NodeStatus=3`,
  Namespace: `metadata:ObjectMeta=1 spec:NamespaceSpec=2 status:NamespaceStatus=3`,
  ConfigMap: `metadata:ObjectMeta=1 immutable?:bool=4 data:{string}=2 binaryData:{bytes}=3`,
  Secret: `metadata:ObjectMeta=1 immutable?:bool=5 data:{bytes}=2 stringData:{string}=4 type:string=3`,
  ServiceAccount: `
    metadata:ObjectMeta=1 *secrets:ObjectReference=2 *imagePullSecrets:LocalObjectReference=3
    automountServiceAccountToken?:bool=4`,
  Service: `metadata:ObjectMeta=1 spec:ServiceSpec=2 status:ServiceStatus=3`,
  Pod: `metadata:ObjectMeta=1 spec:PodSpec=2 status:PodStatus=3`,
  Event: `
    metadata:ObjectMeta=1 involvedObject:ObjectReference=2 reason:string=3 message:string=4
    source:EventSource=5 firstTimestamp:Time=6 lastTimestamp:Time=7 count:int=8 type:string=9
    eventTime:MicroTime=10 series:EventSeries=11 action:string=12 related:ObjectReference=13
    reportingComponent:string=14 reportingInstance:string=15`,
  Job: `metadata:ObjectMeta=1 spec:JobSpec=2 status:JobStatus=3`,
  DaemonSet: `metadata:ObjectMeta=1 spec:DaemonSetSpec=2 status:DaemonSetStatus=3`,
  ControllerRevision: `metadata:ObjectMeta=1 data:RawExtension=2 revision:int=3`,
  Role: `metadata:ObjectMeta=1 *rules:PolicyRule=2`,
  ClusterRole: `metadata:ObjectMeta=1 *rules:PolicyRule=2 aggregationRule:AggregationRule=3`,
  RoleBinding: `metadata:ObjectMeta=1 *subjects:Subject=2 roleRef:RoleRef=3`,
  ClusterRoleBinding: `metadata:ObjectMeta=1 *subjects:Subject=2 roleRef:RoleRef=3`,
  RuntimeClass: `metadata:ObjectMeta=1 handler:string=2 overhead:Overhead=3 scheduling:Scheduling=4`,
  Lease: `metadata:ObjectMeta=1 spec:LeaseSpec=2`,
  TokenRequest: `metadata:ObjectMeta=1 spec:TokenRequestSpec=2 status:TokenRequestStatus=3`,
  Eviction: `metadata:ObjectMeta=1 deleteOptions:DeleteOptions=2`,
  SelfSubjectAccessReview: `
    metadata:ObjectMeta=1 spec:SelfSubjectAccessReviewSpec=2 status:SubjectAccessReviewStatus=3`,
  SubjectAccessReview: `
    metadata:ObjectMeta=1 spec:SubjectAccessReviewSpec=2 status:SubjectAccessReviewStatus=3`,
  SelfSubjectReview: `metadata:ObjectMeta=1 status:SelfSubjectReviewStatus=2`,
  NodeSpec: `
    podCIDR:string=1 *podCIDRs:string=7 providerID:string=3 unschedulable:bool=4 *taints:Taint=5
    configSource:NodeConfigSource=6 externalID:string=2`,
  NodeStatus: `
    capacity:{Quantity}=1 allocatable:{Quantity}=2 phase:string=3 *conditions:NodeCondition=4
    *addresses:NodeAddress=5 daemonEndpoints:NodeDaemonEndpoints=6 nodeInfo:NodeSystemInfo=7
    *images:ContainerImage=8 *volumesInUse:string=9 *volumesAttached:AttachedVolume=10
    config:NodeConfigStatus=11 *runtimeHandlers:NodeRuntimeHandler=12 features:NodeFeatures=13
    *declaredFeatures:string=14`,
  NamespaceSpec: `*finalizers:string=1`,
  NamespaceStatus: `phase:string=1 *conditions:NamespaceCondition=2`,
  ObjectReference: `
    kind:string=1 namespace:string=2 name:string=3 uid:string=4 apiVersion:string=5 resourceVersion:string=6
    fieldPath:string=7`,
  LocalObjectReference: `name:string=1`,
  ServiceSpec: `
    *ports:ServicePort=1 selector:{string}=2 clusterIP:string=3 *clusterIPs:string=18 type:string=4
    *externalIPs:string=5 sessionAffinity:string=7 loadBalancerIP:string=8
    *loadBalancerSourceRanges:string=9 externalName:string=10 externalTrafficPolicy:string=11
    healthCheckNodePort:int=12 publishNotReadyAddresses:bool=13
    sessionAffinityConfig:SessionAffinityConfig=14 *ipFamilies:string=19 ipFamilyPolicy?:string=17
    allocateLoadBalancerNodePorts?:bool=20 loadBalancerClass?:string=21 internalTrafficPolicy?:string=22
    trafficDistribution?:string=23`,
  ServiceStatus: `loadBalancer:LoadBalancerStatus=1 *conditions:Condition=2`,
  PodSpec: `
    *volumes:Volume=1 *initContainers:Container=20 *containers:Container=2
    *ephemeralContainers:EphemeralContainer=34 restartPolicy:string=3 terminationGracePeriodSeconds?:int=4
    activeDeadlineSeconds?:int=5 dnsPolicy:string=6 nodeSelector:{string}=7 serviceAccountName:string=8
    serviceAccount:string=9 automountServiceAccountToken?:bool=21 nodeName:string=10 hostNetwork:bool=11
    hostPID:bool=12 hostIPC:bool=13 shareProcessNamespace?:bool=27 securityContext:PodSecurityContext=14
    *imagePullSecrets:LocalObjectReference=15 hostname:string=16 subdomain:string=17 affinity:Affinity=18
    schedulerName:string=19 *tolerations:Toleration=22 *hostAliases:HostAlias=23 priorityClassName:string=24
    priority?:int=25 dnsConfig:PodDNSConfig=26 *readinessGates:PodReadinessGate=28
    runtimeClassName?:string=29 enableServiceLinks?:bool=30 preemptionPolicy?:string=31
    overhead:{Quantity}=32 *topologySpreadConstraints:TopologySpreadConstraint=33 setHostnameAsFQDN?:bool=35
    os:PodOS=36 hostUsers?:bool=37 *schedulingGates:PodSchedulingGate=38 *resourceClaims:PodResourceClaim=39
    resources:ResourceRequirements=40 hostnameOverride?:string=41 workloadRef:WorkloadReference=42`,
  PodStatus: `
    observedGeneration:int=17 phase:string=1 *conditions:PodCondition=2 message:string=3 reason:string=4
    nominatedNodeName:string=11 hostIP:string=5 *hostIPs:HostIP=16 podIP:string=6 *podIPs:PodIP=12
    startTime:Time=7 *initContainerStatuses:ContainerStatus=10 *containerStatuses:ContainerStatus=8
    qosClass:string=9 *ephemeralContainerStatuses:ContainerStatus=13 resize:string=14
    *resourceClaimStatuses:PodResourceClaimStatus=15
    extendedResourceClaimStatus:PodExtendedResourceClaimStatus=18 allocatedResources:{Quantity}=19
    resources:ResourceRequirements=20`,
  EventSource: `component:string=1 host:string=2`,
  EventSeries: `count:int=1 lastObservedTime:MicroTime=2`,
  JobSpec: `
    parallelism?:int=1 completions?:int=2 activeDeadlineSeconds?:int=3 podFailurePolicy:PodFailurePolicy=11
    successPolicy:SuccessPolicy=16 backoffLimit?:int=7 backoffLimitPerIndex?:int=12 maxFailedIndexes?:int=13
    selector:LabelSelector=4 manualSelector?:bool=5 template:PodTemplateSpec=6
    ttlSecondsAfterFinished?:int=8 completionMode?:string=9 suspend?:bool=10 podReplacementPolicy?:string=14
    managedBy?:string=15`,
  JobStatus: `
    *conditions:JobCondition=1 startTime:Time=2 completionTime:Time=3 active:int=4 succeeded:int=5
    failed:int=6 terminating?:int=11 completedIndexes:string=7 failedIndexes?:string=10
    uncountedTerminatedPods:UncountedTerminatedPods=8 ready?:int=9`,
  DaemonSetSpec: `
    selector:LabelSelector=1 template:PodTemplateSpec=2 updateStrategy:DaemonSetUpdateStrategy=3
    minReadySeconds:int=4 revisionHistoryLimit?:int=6`,
  DaemonSetStatus: `
    currentNumberScheduled:int=1 numberMisscheduled:int=2 desiredNumberScheduled:int=3 numberReady:int=4
    observedGeneration:int=5 updatedNumberScheduled:int=6 numberAvailable:int=7 numberUnavailable:int=8
    collisionCount?:int=9 *conditions:DaemonSetCondition=10`,
  PolicyRule: `
    *verbs:string=1 *apiGroups:string=2 *resources:string=3 *resourceNames:string=4
    *nonResourceURLs:string=5`,
  AggregationRule: `*clusterRoleSelectors:LabelSelector=1`,
  Subject: `kind:string=1 apiGroup:string=2 name:string=3 namespace:string=4`,
  RoleRef: `apiGroup:string=1 kind:string=2 name:string=3`,
  Overhead: `podFixed:{Quantity}=1`,
  Scheduling: `nodeSelector:{string}=1 *tolerations:Toleration=2`,
  LeaseSpec: `
    holderIdentity?:string=1 leaseDurationSeconds?:int=2 acquireTime:MicroTime=3 renewTime:MicroTime=4
    leaseTransitions?:int=5 strategy?:string=6 preferredHolder?:string=7`,
  TokenRequestSpec: `*audiences:string=1 expirationSeconds?:int=4 boundObjectRef:BoundObjectReference=3`,
  TokenRequestStatus: `token:string=1 expirationTimestamp:Time=2`,
  SelfSubjectAccessReviewSpec: `
    resourceAttributes:ResourceAttributes=1 nonResourceAttributes:NonResourceAttributes=2`,
  SubjectAccessReviewStatus: `allowed:bool=1 denied:bool=4 reason:string=2 evaluationError:string=3`,
  SubjectAccessReviewSpec: `
    resourceAttributes:ResourceAttributes=1 nonResourceAttributes:NonResourceAttributes=2 user:string=3
    *groups:string=4 extra:{[string]}=5 uid:string=6`,
  SelfSubjectReviewStatus: `userInfo:UserInfo=1`,
  Taint: `key:string=1 value:string=2 effect:string=3 timeAdded:Time=4`,
  NodeConfigSource: `configMap:ConfigMapNodeConfigSource=2`,
  NodeCondition: `
    type:string=1 status:string=2 lastHeartbeatTime:Time=3 lastTransitionTime:Time=4 reason:string=5
    message:string=6`,
  NodeAddress: `type:string=1 address:string=2`,
  NodeDaemonEndpoints: `kubeletEndpoint:DaemonEndpoint=1`,
  NodeSystemInfo: `
    machineID:string=1 systemUUID:string=2 bootID:string=3 kernelVersion:string=4 osImage:string=5
    containerRuntimeVersion:string=6 kubeletVersion:string=7 kubeProxyVersion:string=8
    operatingSystem:string=9 architecture:string=10 swap:NodeSwapStatus=11`,
  ContainerImage: `*names:string=1 sizeBytes:int=2`,
  AttachedVolume: `name:string=1 devicePath:string=2`,
  NodeConfigStatus: `
    assigned:NodeConfigSource=1 active:NodeConfigSource=2 lastKnownGood:NodeConfigSource=3 error:string=4`,
  NodeRuntimeHandler: `name:string=1 features:NodeRuntimeHandlerFeatures=2`,
  NodeFeatures: `supplementalGroupsPolicy?:bool=1`,
  NamespaceCondition: `
    type:string=1 status:string=2 lastTransitionTime:Time=4 reason:string=5 message:string=6`,
  ServicePort: `
    name:string=1 protocol:string=2 appProtocol?:string=6 port:int=3 targetPort:IntOrString=4 nodePort:int=5`,
  SessionAffinityConfig: `clientIP:ClientIPConfig=1`,
  LoadBalancerStatus: `*ingress:LoadBalancerIngress=1`,
  Volume: `name:string=1 ~volumeSource:VolumeSource=2`,
  Container: `
    name:string=1 image:string=2 *command:string=3 *args:string=4 workingDir:string=5 *ports:ContainerPort=6
    *envFrom:EnvFromSource=19 *env:EnvVar=7 resources:ResourceRequirements=8
    *resizePolicy:ContainerResizePolicy=23 restartPolicy?:string=24
    *restartPolicyRules:ContainerRestartRule=25 *volumeMounts:VolumeMount=9 *volumeDevices:VolumeDevice=21
    livenessProbe:Probe=10 readinessProbe:Probe=11 startupProbe:Probe=22 lifecycle:Lifecycle=12
    terminationMessagePath:string=13 terminationMessagePolicy:string=20 imagePullPolicy:string=14
    securityContext:SecurityContext=15 stdin:bool=16 stdinOnce:bool=17 tty:bool=18`,
  EphemeralContainer: `~ephemeralContainerCommon:EphemeralContainerCommon=1 targetContainerName:string=2`,
  PodSecurityContext: `
    seLinuxOptions:SELinuxOptions=1 windowsOptions:WindowsSecurityContextOptions=8 runAsUser?:int=2
    runAsGroup?:int=6 runAsNonRoot?:bool=3 *supplementalGroups:int=4 supplementalGroupsPolicy?:string=12
    fsGroup?:int=5 *sysctls:Sysctl=7 fsGroupChangePolicy?:string=9 seccompProfile:SeccompProfile=10
    appArmorProfile:AppArmorProfile=11 seLinuxChangePolicy?:string=13`,
  Affinity: `nodeAffinity:NodeAffinity=1 podAffinity:PodAffinity=2 podAntiAffinity:PodAntiAffinity=3`,
  Toleration: `key:string=1 operator:string=2 value:string=3 effect:string=4 tolerationSeconds?:int=5`,
  HostAlias: `ip:string=1 *hostnames:string=2`,
  PodDNSConfig: `*nameservers:string=1 *searches:string=2 *options:PodDNSConfigOption=3`,
  PodReadinessGate: `conditionType:string=1`,
  TopologySpreadConstraint: `
    maxSkew:int=1 topologyKey:string=2 whenUnsatisfiable:string=3 labelSelector:LabelSelector=4
    minDomains?:int=5 nodeAffinityPolicy?:string=6 nodeTaintsPolicy?:string=7 *matchLabelKeys:string=8`,
  PodOS: `name:string=1`,
  PodSchedulingGate: `name:string=1`,
  PodResourceClaim: `name:string=1 resourceClaimName?:string=3 resourceClaimTemplateName?:string=4`,
  ResourceRequirements: `limits:{Quantity}=1 requests:{Quantity}=2 *claims:ResourceClaim=3`,
  WorkloadReference: `name:string=1 podGroup:string=2 podGroupReplicaKey:string=3`,
  PodCondition: `
    type:string=1 observedGeneration:int=7 status:string=2 lastProbeTime:Time=3 lastTransitionTime:Time=4
    reason:string=5 message:string=6`,
  HostIP: `ip:string=1`,
  PodIP: `ip:string=1`,
  ContainerStatus: `
    name:string=1 state:ContainerState=2 lastState:ContainerState=3 ready:bool=4 restartCount:int=5
    image:string=6 imageID:string=7 containerID:string=8 started?:bool=9 allocatedResources:{Quantity}=10
    resources:ResourceRequirements=11 *volumeMounts:VolumeMountStatus=12 user:ContainerUser=13
    *allocatedResourcesStatus:ResourceStatus=14 stopSignal?:string=15`,
  PodResourceClaimStatus: `name:string=1 resourceClaimName?:string=2`,
  PodExtendedResourceClaimStatus: `
    *requestMappings:ContainerExtendedResourceRequest=1 resourceClaimName:string=2`,
  PodFailurePolicy: `*rules:PodFailurePolicyRule=1`,
  SuccessPolicy: `*rules:SuccessPolicyRule=1`,
  PodTemplateSpec: `metadata:ObjectMeta=1 spec:PodSpec=2`,
  JobCondition: `
    type:string=1 status:string=2 lastProbeTime:Time=3 lastTransitionTime:Time=4 reason:string=5
    message:string=6`,
  UncountedTerminatedPods: `*succeeded:string=1 *failed:string=2`,
  DaemonSetUpdateStrategy: `type:string=1 rollingUpdate:RollingUpdateDaemonSet=2`,
  DaemonSetCondition: `
    type:string=1 status:string=2 lastTransitionTime:Time=3 reason:string=4 message:string=5`,
  BoundObjectReference: `kind:string=1 apiVersion:string=2 name:string=3 uid:string=4`,
  ResourceAttributes: `
    namespace:string=1 verb:string=2 group:string=3 version:string=4 resource:string=5 subresource:string=6
    name:string=7 fieldSelector:FieldSelectorAttributes=8 labelSelector:LabelSelectorAttributes=9`,
  NonResourceAttributes: `path:string=1 verb:string=2`,
  UserInfo: `username:string=1 uid:string=2 *groups:string=3 extra:{[string]}=4`,
  ConfigMapNodeConfigSource: `
    namespace:string=1 name:string=2 uid:string=3 resourceVersion:string=4 kubeletConfigKey:string=5`,
  DaemonEndpoint: `Port:int=1`,
  NodeSwapStatus: `capacity?:int=1`,
  NodeRuntimeHandlerFeatures: `recursiveReadOnlyMounts?:bool=1 userNamespaces?:bool=2`,
  ClientIPConfig: `timeoutSeconds?:int=1`,
  LoadBalancerIngress: `ip:string=1 hostname:string=2 ipMode?:string=3 *ports:PortStatus=4`,
  VolumeSource: `
    hostPath:HostPathVolumeSource=1 emptyDir:EmptyDirVolumeSource=2
    gcePersistentDisk:GCEPersistentDiskVolumeSource=3
    awsElasticBlockStore:AWSElasticBlockStoreVolumeSource=4 gitRepo:GitRepoVolumeSource=5
    secret:SecretVolumeSource=6 nfs:NFSVolumeSource=7 iscsi:ISCSIVolumeSource=8
    glusterfs:GlusterfsVolumeSource=9 persistentVolumeClaim:PersistentVolumeClaimVolumeSource=10
    rbd:RBDVolumeSource=11 flexVolume:FlexVolumeSource=12 cinder:CinderVolumeSource=13
    cephfs:CephFSVolumeSource=14 flocker:FlockerVolumeSource=15 downwardAPI:DownwardAPIVolumeSource=16
    fc:FCVolumeSource=17 azureFile:AzureFileVolumeSource=18 configMap:ConfigMapVolumeSource=19
    vsphereVolume:VsphereVirtualDiskVolumeSource=20 quobyte:QuobyteVolumeSource=21
    azureDisk:AzureDiskVolumeSource=22 photonPersistentDisk:PhotonPersistentDiskVolumeSource=23
    projected:ProjectedVolumeSource=26 portworxVolume:PortworxVolumeSource=24 scaleIO:ScaleIOVolumeSource=25
    storageos:StorageOSVolumeSource=27 csi:CSIVolumeSource=28 ephemeral:EphemeralVolumeSource=29
    image:ImageVolumeSource=30`,
  ContainerPort: `name:string=1 hostPort:int=2 containerPort:int=3 protocol:string=4 hostIP:string=5`,
  EnvFromSource: `prefix:string=1 configMapRef:ConfigMapEnvSource=2 secretRef:SecretEnvSource=3`,
  EnvVar: `name:string=1 value:string=2 valueFrom:EnvVarSource=3`,
  ContainerResizePolicy: `resourceName:string=1 restartPolicy:string=2`,
  ContainerRestartRule: `action:string=1 exitCodes:ContainerRestartRuleOnExitCodes=2`,
  VolumeMount: `
    name:string=1 readOnly:bool=2 recursiveReadOnly?:string=7 mountPath:string=3 subPath:string=4
    mountPropagation?:string=5 subPathExpr:string=6`,
  VolumeDevice: `name:string=1 devicePath:string=2`,
  Probe: `
    ~probeHandler:ProbeHandler=1 initialDelaySeconds:int=2 timeoutSeconds:int=3 periodSeconds:int=4
    successThreshold:int=5 failureThreshold:int=6 terminationGracePeriodSeconds?:int=7`,
  Lifecycle: `postStart:LifecycleHandler=1 preStop:LifecycleHandler=2 stopSignal?:string=3`,
  SecurityContext: `
    capabilities:Capabilities=1 privileged?:bool=2 seLinuxOptions:SELinuxOptions=3
    windowsOptions:WindowsSecurityContextOptions=10 runAsUser?:int=4 runAsGroup?:int=8 runAsNonRoot?:bool=5
    readOnlyRootFilesystem?:bool=6 allowPrivilegeEscalation?:bool=7 procMount?:string=9
    seccompProfile:SeccompProfile=11 appArmorProfile:AppArmorProfile=12`,
  EphemeralContainerCommon: `
    name:string=1 image:string=2 *command:string=3 *args:string=4 workingDir:string=5 *ports:ContainerPort=6
    *envFrom:EnvFromSource=19 *env:EnvVar=7 resources:ResourceRequirements=8
    *resizePolicy:ContainerResizePolicy=23 restartPolicy?:string=24
    *restartPolicyRules:ContainerRestartRule=25 *volumeMounts:VolumeMount=9 *volumeDevices:VolumeDevice=21
    livenessProbe:Probe=10 readinessProbe:Probe=11 startupProbe:Probe=22 lifecycle:Lifecycle=12
    terminationMessagePath:string=13 terminationMessagePolicy:string=20 imagePullPolicy:string=14
    securityContext:SecurityContext=15 stdin:bool=16 stdinOnce:bool=17 tty:bool=18`,
  SELinuxOptions: `user:string=1 role:string=2 type:string=3 level:string=4`,
  WindowsSecurityContextOptions: `
    gmsaCredentialSpecName?:string=1 gmsaCredentialSpec?:string=2 runAsUserName?:string=3
    hostProcess?:bool=4`,
  Sysctl: `name:string=1 value:string=2`,
  SeccompProfile: `type:string=1 localhostProfile?:string=2`,
  AppArmorProfile: `type:string=1 localhostProfile?:string=2`,
  NodeAffinity: `
    requiredDuringSchedulingIgnoredDuringExecution:NodeSelector=1
    *preferredDuringSchedulingIgnoredDuringExecution:PreferredSchedulingTerm=2`,
  PodAffinity: `
    *requiredDuringSchedulingIgnoredDuringExecution:PodAffinityTerm=1
    *preferredDuringSchedulingIgnoredDuringExecution:WeightedPodAffinityTerm=2`,
  PodAntiAffinity: `
    *requiredDuringSchedulingIgnoredDuringExecution:PodAffinityTerm=1
    *preferredDuringSchedulingIgnoredDuringExecution:WeightedPodAffinityTerm=2`,
  PodDNSConfigOption: `name:string=1 value?:string=2`,
  ResourceClaim: `name:string=1 request:string=2`,
  ContainerState: `
    waiting:ContainerStateWaiting=1 running:ContainerStateRunning=2 terminated:ContainerStateTerminated=3`,
  VolumeMountStatus: `name:string=1 mountPath:string=2 readOnly:bool=3 recursiveReadOnly?:string=4`,
  ContainerUser: `linux:LinuxContainerUser=1`,
  ResourceStatus: `name:string=1 *resources:ResourceHealth=2`,
  ContainerExtendedResourceRequest: `containerName:string=1 resourceName:string=2 requestName:string=3`,
  PodFailurePolicyRule: `
    action:string=1 onExitCodes:PodFailurePolicyOnExitCodesRequirement=2
    *onPodConditions:PodFailurePolicyOnPodConditionsPattern=3`,
  SuccessPolicyRule: `succeededIndexes?:string=1 succeededCount?:int=2`,
  RollingUpdateDaemonSet: `maxUnavailable:IntOrString=1 maxSurge:IntOrString=2`,
  FieldSelectorAttributes: `rawSelector:string=1 *requirements:FieldSelectorRequirement=2`,
  LabelSelectorAttributes: `rawSelector:string=1 *requirements:LabelSelectorRequirement=2`,
  PortStatus: `port:int=1 protocol:string=2 error?:string=3`,
  HostPathVolumeSource: `path:string=1 type?:string=2`,
  EmptyDirVolumeSource: `medium:string=1 sizeLimit:Quantity=2`,
  GCEPersistentDiskVolumeSource: `pdName:string=1 fsType:string=2 partition:int=3 readOnly:bool=4`,
  AWSElasticBlockStoreVolumeSource: `volumeID:string=1 fsType:string=2 partition:int=3 readOnly:bool=4`,
  GitRepoVolumeSource: `repository:string=1 revision:string=2 directory:string=3`,
  SecretVolumeSource: `secretName:string=1 *items:KeyToPath=2 defaultMode?:int=3 optional?:bool=4`,
  NFSVolumeSource: `server:string=1 path:string=2 readOnly:bool=3`,
  ISCSIVolumeSource: `
    targetPortal:string=1 iqn:string=2 lun:int=3 iscsiInterface:string=4 fsType:string=5 readOnly:bool=6
    *portals:string=7 chapAuthDiscovery:bool=8 chapAuthSession:bool=11 secretRef:LocalObjectReference=10
    initiatorName?:string=12`,
  GlusterfsVolumeSource: `endpoints:string=1 path:string=2 readOnly:bool=3`,
  PersistentVolumeClaimVolumeSource: `claimName:string=1 readOnly:bool=2`,
  RBDVolumeSource: `
    *monitors:string=1 image:string=2 fsType:string=3 pool:string=4 user:string=5 keyring:string=6
    secretRef:LocalObjectReference=7 readOnly:bool=8`,
  FlexVolumeSource: `
    driver:string=1 fsType:string=2 secretRef:LocalObjectReference=3 readOnly:bool=4 options:{string}=5`,
  CinderVolumeSource: `volumeID:string=1 fsType:string=2 readOnly:bool=3 secretRef:LocalObjectReference=4`,
  CephFSVolumeSource: `
    *monitors:string=1 path:string=2 user:string=3 secretFile:string=4 secretRef:LocalObjectReference=5
    readOnly:bool=6`,
  FlockerVolumeSource: `datasetName:string=1 datasetUUID:string=2`,
  DownwardAPIVolumeSource: `*items:DownwardAPIVolumeFile=1 defaultMode?:int=2`,
  FCVolumeSource: `*targetWWNs:string=1 lun?:int=2 fsType:string=3 readOnly:bool=4 *wwids:string=5`,
  AzureFileVolumeSource: `secretName:string=1 shareName:string=2 readOnly:bool=3`,
  ConfigMapVolumeSource: `
    ~localObjectReference:LocalObjectReference=1 *items:KeyToPath=2 defaultMode?:int=3 optional?:bool=4`,
  VsphereVirtualDiskVolumeSource: `
    volumePath:string=1 fsType:string=2 storagePolicyName:string=3 storagePolicyID:string=4`,
  QuobyteVolumeSource: `
    registry:string=1 volume:string=2 readOnly:bool=3 user:string=4 group:string=5 tenant:string=6`,
  AzureDiskVolumeSource: `
    diskName:string=1 diskURI:string=2 cachingMode?:string=3 fsType?:string=4 readOnly?:bool=5
    kind?:string=6`,
  PhotonPersistentDiskVolumeSource: `pdID:string=1 fsType:string=2`,
  ProjectedVolumeSource: `*sources:VolumeProjection=1 defaultMode?:int=2`,
  PortworxVolumeSource: `volumeID:string=1 fsType:string=2 readOnly:bool=3`,
  ScaleIOVolumeSource: `
    gateway:string=1 system:string=2 secretRef:LocalObjectReference=3 sslEnabled:bool=4
    protectionDomain:string=5 storagePool:string=6 storageMode:string=7 volumeName:string=8 fsType:string=9
    readOnly:bool=10`,
  StorageOSVolumeSource: `
    volumeName:string=1 volumeNamespace:string=2 fsType:string=3 readOnly:bool=4
    secretRef:LocalObjectReference=5`,
  CSIVolumeSource: `
    driver:string=1 readOnly?:bool=2 fsType?:string=3 volumeAttributes:{string}=4
    nodePublishSecretRef:LocalObjectReference=5`,
  EphemeralVolumeSource: `volumeClaimTemplate:PersistentVolumeClaimTemplate=1`,
  ImageVolumeSource: `reference:string=1 pullPolicy:string=2`,
  ConfigMapEnvSource: `~localObjectReference:LocalObjectReference=1 optional?:bool=2`,
  SecretEnvSource: `~localObjectReference:LocalObjectReference=1 optional?:bool=2`,
  EnvVarSource: `
    fieldRef:ObjectFieldSelector=1 resourceFieldRef:ResourceFieldSelector=2
    configMapKeyRef:ConfigMapKeySelector=3 secretKeyRef:SecretKeySelector=4 fileKeyRef:FileKeySelector=5`,
  ContainerRestartRuleOnExitCodes: `operator:string=1 *values:int=2`,
  ProbeHandler: `exec:ExecAction=1 httpGet:HTTPGetAction=2 tcpSocket:TCPSocketAction=3 grpc:GRPCAction=4`,
  LifecycleHandler: `
    exec:ExecAction=1 httpGet:HTTPGetAction=2 tcpSocket:TCPSocketAction=3 sleep:SleepAction=4`,
  Capabilities: `*add:string=1 *drop:string=2`,
  NodeSelector: `*nodeSelectorTerms:NodeSelectorTerm=1`,
  PreferredSchedulingTerm: `weight:int=1 preference:NodeSelectorTerm=2`,
  PodAffinityTerm: `
    labelSelector:LabelSelector=1 *namespaces:string=2 topologyKey:string=3
    namespaceSelector:LabelSelector=4 *matchLabelKeys:string=5 *mismatchLabelKeys:string=6`,
  WeightedPodAffinityTerm: `weight:int=1 podAffinityTerm:PodAffinityTerm=2`,
  ContainerStateWaiting: `reason:string=1 message:string=2`,
  ContainerStateRunning: `startedAt:Time=1`,
  ContainerStateTerminated: `
    exitCode:int=1 signal:int=2 reason:string=3 message:string=4 startedAt:Time=5 finishedAt:Time=6
    containerID:string=7`,
  LinuxContainerUser: `uid:int=1 gid:int=2 *supplementalGroups:int=3`,
  ResourceHealth: `resourceID:string=1 health:string=2`,
  PodFailurePolicyOnExitCodesRequirement: `containerName?:string=1 operator:string=2 *values:int=3`,
  PodFailurePolicyOnPodConditionsPattern: `type:string=1 status:string=2`,
  KeyToPath: `key:string=1 path:string=2 mode?:int=3`,
  DownwardAPIVolumeFile: `
    path:string=1 fieldRef:ObjectFieldSelector=2 resourceFieldRef:ResourceFieldSelector=3 mode?:int=4`,
  VolumeProjection: `
    secret:SecretProjection=1 downwardAPI:DownwardAPIProjection=2 configMap:ConfigMapProjection=3
    serviceAccountToken:ServiceAccountTokenProjection=4 clusterTrustBundle:ClusterTrustBundleProjection=5
    podCertificate:PodCertificateProjection=6`,
  PersistentVolumeClaimTemplate: `metadata:ObjectMeta=1 spec:PersistentVolumeClaimSpec=2`,
  ObjectFieldSelector: `apiVersion:string=1 fieldPath:string=2`,
  ResourceFieldSelector: `containerName:string=1 resource:string=2 divisor:Quantity=3`,
  ConfigMapKeySelector: `~localObjectReference:LocalObjectReference=1 key:string=2 optional?:bool=3`,
  SecretKeySelector: `~localObjectReference:LocalObjectReference=1 key:string=2 optional?:bool=3`,
  FileKeySelector: `volumeName:string=1 path:string=2 key:string=3 optional?:bool=4`,
  ExecAction: `*command:string=1`,
  HTTPGetAction: `path:string=1 port:IntOrString=2 host:string=3 scheme:string=4 *httpHeaders:HTTPHeader=5`,
  TCPSocketAction: `port:IntOrString=1 host:string=2`,
  GRPCAction: `port:int=1 service?:string=2`,
  SleepAction: `seconds:int=1`,
  NodeSelectorTerm: `*matchExpressions:NodeSelectorRequirement=1 *matchFields:NodeSelectorRequirement=2`,
  SecretProjection: `~localObjectReference:LocalObjectReference=1 *items:KeyToPath=2 optional?:bool=4`,
  DownwardAPIProjection: `*items:DownwardAPIVolumeFile=1`,
  ConfigMapProjection: `~localObjectReference:LocalObjectReference=1 *items:KeyToPath=2 optional?:bool=4`,
  ServiceAccountTokenProjection: `audience:string=1 expirationSeconds?:int=2 path:string=3`,
  ClusterTrustBundleProjection: `
    name?:string=1 signerName?:string=2 labelSelector:LabelSelector=3 optional?:bool=5 path:string=4`,
  PodCertificateProjection: `
    signerName:string=1 keyType:string=2 maxExpirationSeconds?:int=3 credentialBundlePath:string=4
    keyPath:string=5 certificateChainPath:string=6 userAnnotations:{string}=7`,
  PersistentVolumeClaimSpec: `
    *accessModes:string=1 selector:LabelSelector=4 resources:VolumeResourceRequirements=2
    volumeName:string=3 storageClassName?:string=5 volumeMode?:string=6
    dataSource:TypedLocalObjectReference=7 dataSourceRef:TypedObjectReference=8
    volumeAttributesClassName?:string=9`,
  HTTPHeader: `name:string=1 value:string=2`,
  NodeSelectorRequirement: `key:string=1 operator:string=2 *values:string=3`,
  VolumeResourceRequirements: `limits:{Quantity}=1 requests:{Quantity}=2`,
  TypedLocalObjectReference: `apiGroup?:string=1 kind:string=2 name:string=3`,
  TypedObjectReference: `apiGroup?:string=1 kind:string=2 name:string=3 namespace?:string=4`,
};

/** The OpenAPI package of each type: meta/v1 and runtime types, then k8s.io/api groups; the rest is core/v1. */
const PACKAGES: Record<string, string> = {
  "io.k8s.apimachinery.pkg.apis.meta.v1": `
    ObjectMeta OwnerReference ManagedFieldsEntry ListMeta LabelSelector LabelSelectorRequirement
    FieldSelectorRequirement Condition Preconditions DeleteOptions Status StatusDetails StatusCause Time
    MicroTime FieldsV1 TypeMeta`,
  "io.k8s.apimachinery.pkg.api.resource": "Quantity",
  "io.k8s.apimachinery.pkg.util.intstr": "IntOrString",
  "io.k8s.apimachinery.pkg.runtime": "RawExtension Unknown",
  "io.k8s.api.batch.v1": `
    Job JobSpec JobStatus PodFailurePolicy SuccessPolicy JobCondition UncountedTerminatedPods
    PodFailurePolicyRule SuccessPolicyRule PodFailurePolicyOnExitCodesRequirement
    PodFailurePolicyOnPodConditionsPattern`,
  "io.k8s.api.apps.v1": `
    DaemonSet ControllerRevision DaemonSetSpec DaemonSetStatus DaemonSetUpdateStrategy DaemonSetCondition
    RollingUpdateDaemonSet`,
  "io.k8s.api.rbac.v1":
    "Role ClusterRole RoleBinding ClusterRoleBinding PolicyRule AggregationRule Subject RoleRef",
  "io.k8s.api.node.v1": "RuntimeClass Overhead Scheduling",
  "io.k8s.api.coordination.v1": "Lease LeaseSpec",
  "io.k8s.api.authentication.v1": `
    TokenRequest SelfSubjectReview TokenRequestSpec TokenRequestStatus SelfSubjectReviewStatus
    BoundObjectReference UserInfo ExtraValue`,
  "io.k8s.api.policy.v1": "Eviction",
  "io.k8s.api.authorization.v1": `
    SelfSubjectAccessReview SubjectAccessReview SelfSubjectAccessReviewSpec SubjectAccessReviewStatus
    SubjectAccessReviewSpec ResourceAttributes NonResourceAttributes FieldSelectorAttributes
    LabelSelectorAttributes`,
};

const PACKAGE_OF = new Map(
  Object.entries(PACKAGES).flatMap(([pkg, names]) =>
    names
      .split(/\s+/)
      .filter(Boolean)
      .map((n) => [n, pkg]),
  ),
);

/** The OpenAPI definition name of a type: `io.k8s.api.batch.v1.JobSpec`. */
export function definitionName(type: string): string {
  return `${PACKAGE_OF.get(type) ?? "io.k8s.api.core.v1"}.${type}`;
}

function parseField(word: string): Field {
  const m = /^(~?)(\*?)([A-Za-z0-9]+)(\??):(\{?)([A-Za-z0-9[\]]+)\}?=(\d+)$/.exec(word);
  if (!m) throw new Error(`sim/schemas.ts: bad field "${word}"`);
  const [, inline, repeated, name, pointer, map, type, num] = m;
  return {
    name,
    num: Number(num),
    // A map of lists (user `extra`) is a map of ExtraValue messages on the wire.
    type: type === "[string]" ? "ExtraValue" : type,
    repeated: repeated === "*",
    pointer: pointer === "?",
    inline: inline === "~",
    map: map === "{",
  };
}

/** Message name → its fields, parsed once. */
export const SCHEMAS: ReadonlyMap<string, readonly Field[]> = new Map(
  Object.entries(TEXT).map(([name, text]) => [name, text.split(/\s+/).filter(Boolean).map(parseField)]),
);

export function schemaOf(type: string): readonly Field[] {
  const s = SCHEMAS.get(type);
  if (!s) throw new Error(`sim/schemas.ts: no message ${type}`);
  return s;
}

const jsonFieldsCache = new Map<string, ReadonlyMap<string, Field>>();

/** The fields of a message as its JSON object shows them: inline messages' fields lifted into it. */
export function jsonFields(type: string): ReadonlyMap<string, Field> {
  let out = jsonFieldsCache.get(type);
  if (!out) {
    const fields = new Map<string, Field>();
    for (const f of schemaOf(type)) {
      if (f.inline) for (const [k, v] of jsonFields(f.type)) fields.set(k, v);
      else fields.set(f.name, f);
    }
    jsonFieldsCache.set(type, (out = fields));
  }
  return out;
}

type Json = unknown;

/**
 * The fields of `value` (a JSON object of message `type`) that the type does not have, as paths
 * (`spec.template.spec.containers[0].foo`), and the value with them removed — what a real server's decoder
 * drops (every fieldValidation mode drops them; Strict refuses, Warn reports).
 */
export function unknownFields(type: string, value: Json, path = ""): { paths: string[]; pruned: Json } {
  if (SPECIAL.has(type) || SCALARS.has(type)) return { paths: [], pruned: value };
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { paths: [], pruned: value };
  const fields = jsonFields(type);
  const paths: string[] = [];
  const pruned: Record<string, Json> = {};
  for (const [k, v] of Object.entries(value as Record<string, Json>)) {
    const at = path ? `${path}.${k}` : k;
    const f = fields.get(k);
    if (!f) {
      paths.push(at);
      continue;
    }
    if (f.map && v && typeof v === "object" && !Array.isArray(v)) {
      const entries: Record<string, Json> = {};
      for (const [mk, mv] of Object.entries(v as Record<string, Json>)) {
        const r = unknownFields(f.type, mv, `${at}[${mk}]`);
        paths.push(...r.paths);
        entries[mk] = r.pruned;
      }
      pruned[k] = entries;
    } else if (f.repeated && Array.isArray(v)) {
      pruned[k] = v.map((item: Json, i) => {
        const r = unknownFields(f.type, item, `${at}[${i}]`);
        paths.push(...r.paths);
        return r.pruned;
      });
    } else {
      const r = unknownFields(f.type, v, at);
      paths.push(...r.paths);
      pruned[k] = r.pruned;
    }
  }
  return { paths, pruned };
}
