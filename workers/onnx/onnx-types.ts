// Generated from workers/onnx/onnx.proto by scripts/onnx-types.ts (`npm run onnx:types`): do not edit.
// The shapes of the ONNX messages for strict TypeScript; workers/onnx/proto.ts loads the .proto itself.
import type { IConversionOptions, Long, Reader, Writer } from 'protobufjs';

/** int64 fields decode as Long (protobufjs with the long package) and encode from a number or a Long. */
export type Int64 = number | Long;

/** One message type: build, encode, decode, convert. */
export interface MessageType<I, M> {
  create(properties?: I): M;
  encode(message: I, writer?: Writer): Writer;
  decode(reader: Reader | Uint8Array, length?: number): M;
  toObject(message: M, options?: IConversionOptions): Record<string, unknown>;
}

/** onnx.AttributeProto: what create() and encode() take. */
export interface IAttributeProto {
  name?: string | null;
  refAttrName?: string | null;
  docString?: string | null;
  type?: number | null;
  f?: number | null;
  i?: Int64 | null;
  s?: Uint8Array | null;
  t?: ITensorProto | null;
  g?: IGraphProto | null;
  sparseTensor?: ISparseTensorProto | null;
  tp?: ITypeProto | null;
  floats?: number[] | null;
  ints?: Int64[] | null;
  strings?: Uint8Array[] | null;
  tensors?: ITensorProto[] | null;
  graphs?: IGraphProto[] | null;
  sparseTensors?: ISparseTensorProto[] | null;
  typeProtos?: ITypeProto[] | null;
}
/** onnx.AttributeProto as decode() and create() give it. */
export interface AttributeProto extends IAttributeProto {
  name: string;
  refAttrName: string;
  docString: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t?: ITensorProto | null;
  g?: IGraphProto | null;
  sparseTensor?: ISparseTensorProto | null;
  tp?: ITypeProto | null;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: ITensorProto[];
  graphs: IGraphProto[];
  sparseTensors: ISparseTensorProto[];
  typeProtos: ITypeProto[];
}

/** onnx.ValueInfoProto: what create() and encode() take. */
export interface IValueInfoProto {
  name?: string | null;
  type?: ITypeProto | null;
  docString?: string | null;
  metadataProps?: IStringStringEntryProto[] | null;
}
/** onnx.ValueInfoProto as decode() and create() give it. */
export interface ValueInfoProto extends IValueInfoProto {
  name: string;
  type?: ITypeProto | null;
  docString: string;
  metadataProps: IStringStringEntryProto[];
}

/** onnx.NodeProto: what create() and encode() take. */
export interface INodeProto {
  input?: string[] | null;
  output?: string[] | null;
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  overload?: string | null;
  attribute?: IAttributeProto[] | null;
  docString?: string | null;
  metadataProps?: IStringStringEntryProto[] | null;
}
/** onnx.NodeProto as decode() and create() give it. */
export interface NodeProto extends INodeProto {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  overload: string;
  attribute: IAttributeProto[];
  docString: string;
  metadataProps: IStringStringEntryProto[];
}

/** onnx.TrainingInfoProto: what create() and encode() take. */
export interface ITrainingInfoProto {
  initialization?: IGraphProto | null;
  algorithm?: IGraphProto | null;
  initializationBinding?: IStringStringEntryProto[] | null;
  updateBinding?: IStringStringEntryProto[] | null;
}
/** onnx.TrainingInfoProto as decode() and create() give it. */
export interface TrainingInfoProto extends ITrainingInfoProto {
  initialization?: IGraphProto | null;
  algorithm?: IGraphProto | null;
  initializationBinding: IStringStringEntryProto[];
  updateBinding: IStringStringEntryProto[];
}

/** onnx.ModelProto: what create() and encode() take. */
export interface IModelProto {
  irVersion?: Int64 | null;
  opsetImport?: IOperatorSetIdProto[] | null;
  producerName?: string | null;
  producerVersion?: string | null;
  domain?: string | null;
  modelVersion?: Int64 | null;
  docString?: string | null;
  graph?: IGraphProto | null;
  metadataProps?: IStringStringEntryProto[] | null;
  trainingInfo?: ITrainingInfoProto[] | null;
  functions?: IFunctionProto[] | null;
}
/** onnx.ModelProto as decode() and create() give it. */
export interface ModelProto extends IModelProto {
  irVersion: Int64;
  opsetImport: IOperatorSetIdProto[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: Int64;
  docString: string;
  graph?: IGraphProto | null;
  metadataProps: IStringStringEntryProto[];
  trainingInfo: ITrainingInfoProto[];
  functions: IFunctionProto[];
}

/** onnx.StringStringEntryProto: what create() and encode() take. */
export interface IStringStringEntryProto {
  key?: string | null;
  value?: string | null;
}
/** onnx.StringStringEntryProto as decode() and create() give it. */
export interface StringStringEntryProto extends IStringStringEntryProto {
  key: string;
  value: string;
}

/** onnx.TensorAnnotation: what create() and encode() take. */
export interface ITensorAnnotation {
  tensorName?: string | null;
  quantParameterTensorNames?: IStringStringEntryProto[] | null;
}
/** onnx.TensorAnnotation as decode() and create() give it. */
export interface TensorAnnotation extends ITensorAnnotation {
  tensorName: string;
  quantParameterTensorNames: IStringStringEntryProto[];
}

/** onnx.GraphProto: what create() and encode() take. */
export interface IGraphProto {
  node?: INodeProto[] | null;
  name?: string | null;
  initializer?: ITensorProto[] | null;
  sparseInitializer?: ISparseTensorProto[] | null;
  docString?: string | null;
  input?: IValueInfoProto[] | null;
  output?: IValueInfoProto[] | null;
  valueInfo?: IValueInfoProto[] | null;
  quantizationAnnotation?: ITensorAnnotation[] | null;
  metadataProps?: IStringStringEntryProto[] | null;
}
/** onnx.GraphProto as decode() and create() give it. */
export interface GraphProto extends IGraphProto {
  node: INodeProto[];
  name: string;
  initializer: ITensorProto[];
  sparseInitializer: ISparseTensorProto[];
  docString: string;
  input: IValueInfoProto[];
  output: IValueInfoProto[];
  valueInfo: IValueInfoProto[];
  quantizationAnnotation: ITensorAnnotation[];
  metadataProps: IStringStringEntryProto[];
}

/** onnx.TensorProto: what create() and encode() take. */
export interface ITensorProto {
  dims?: Int64[] | null;
  dataType?: number | null;
  segment?: ITensorProtoSegment | null;
  floatData?: number[] | null;
  int32Data?: number[] | null;
  stringData?: Uint8Array[] | null;
  int64Data?: Int64[] | null;
  name?: string | null;
  docString?: string | null;
  rawData?: Uint8Array | null;
  externalData?: IStringStringEntryProto[] | null;
  dataLocation?: number | null;
  doubleData?: number[] | null;
  uint64Data?: Int64[] | null;
  metadataProps?: IStringStringEntryProto[] | null;
}
/** onnx.TensorProto as decode() and create() give it. */
export interface TensorProto extends ITensorProto {
  dims: Int64[];
  dataType: number;
  segment?: ITensorProtoSegment | null;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: Int64[];
  name: string;
  docString: string;
  rawData: Uint8Array;
  externalData: IStringStringEntryProto[];
  dataLocation: number;
  doubleData: number[];
  uint64Data: Int64[];
  metadataProps: IStringStringEntryProto[];
}

/** onnx.TensorProto.Segment: what create() and encode() take. */
export interface ITensorProtoSegment {
  begin?: Int64 | null;
  end?: Int64 | null;
}
/** onnx.TensorProto.Segment as decode() and create() give it. */
export interface TensorProtoSegment extends ITensorProtoSegment {
  begin: Int64;
  end: Int64;
}

/** onnx.SparseTensorProto: what create() and encode() take. */
export interface ISparseTensorProto {
  values?: ITensorProto | null;
  indices?: ITensorProto | null;
  dims?: Int64[] | null;
}
/** onnx.SparseTensorProto as decode() and create() give it. */
export interface SparseTensorProto extends ISparseTensorProto {
  values?: ITensorProto | null;
  indices?: ITensorProto | null;
  dims: Int64[];
}

/** onnx.TensorShapeProto: what create() and encode() take. */
export interface ITensorShapeProto {
  dim?: ITensorShapeProtoDimension[] | null;
}
/** onnx.TensorShapeProto as decode() and create() give it. */
export interface TensorShapeProto extends ITensorShapeProto {
  dim: ITensorShapeProtoDimension[];
}

/** onnx.TensorShapeProto.Dimension: what create() and encode() take. */
export interface ITensorShapeProtoDimension {
  dimValue?: Int64 | null;
  dimParam?: string | null;
  denotation?: string | null;
}
/** onnx.TensorShapeProto.Dimension as decode() and create() give it. */
export interface TensorShapeProtoDimension extends ITensorShapeProtoDimension {
  dimValue?: Int64 | null;
  dimParam?: string | null;
  denotation: string;
  value?: 'dimValue' | 'dimParam';
}

/** onnx.TypeProto: what create() and encode() take. */
export interface ITypeProto {
  tensorType?: ITypeProtoTensor | null;
  sequenceType?: ITypeProtoSequence | null;
  mapType?: ITypeProtoMap | null;
  optionalType?: ITypeProtoOptional | null;
  sparseTensorType?: ITypeProtoSparseTensor | null;
  opaqueType?: ITypeProtoOpaque | null;
  denotation?: string | null;
}
/** onnx.TypeProto as decode() and create() give it. */
export interface TypeProto extends ITypeProto {
  tensorType?: ITypeProtoTensor | null;
  sequenceType?: ITypeProtoSequence | null;
  mapType?: ITypeProtoMap | null;
  optionalType?: ITypeProtoOptional | null;
  sparseTensorType?: ITypeProtoSparseTensor | null;
  opaqueType?: ITypeProtoOpaque | null;
  denotation: string;
  value?: 'tensorType' | 'sequenceType' | 'mapType' | 'optionalType' | 'sparseTensorType' | 'opaqueType';
}

/** onnx.TypeProto.Tensor: what create() and encode() take. */
export interface ITypeProtoTensor {
  elemType?: number | null;
  shape?: ITensorShapeProto | null;
}
/** onnx.TypeProto.Tensor as decode() and create() give it. */
export interface TypeProtoTensor extends ITypeProtoTensor {
  elemType: number;
  shape?: ITensorShapeProto | null;
}

/** onnx.TypeProto.Sequence: what create() and encode() take. */
export interface ITypeProtoSequence {
  elemType?: ITypeProto | null;
}
/** onnx.TypeProto.Sequence as decode() and create() give it. */
export interface TypeProtoSequence extends ITypeProtoSequence {
  elemType?: ITypeProto | null;
}

/** onnx.TypeProto.Map: what create() and encode() take. */
export interface ITypeProtoMap {
  keyType?: number | null;
  valueType?: ITypeProto | null;
}
/** onnx.TypeProto.Map as decode() and create() give it. */
export interface TypeProtoMap extends ITypeProtoMap {
  keyType: number;
  valueType?: ITypeProto | null;
}

/** onnx.TypeProto.Optional: what create() and encode() take. */
export interface ITypeProtoOptional {
  elemType?: ITypeProto | null;
}
/** onnx.TypeProto.Optional as decode() and create() give it. */
export interface TypeProtoOptional extends ITypeProtoOptional {
  elemType?: ITypeProto | null;
}

/** onnx.TypeProto.SparseTensor: what create() and encode() take. */
export interface ITypeProtoSparseTensor {
  elemType?: number | null;
  shape?: ITensorShapeProto | null;
}
/** onnx.TypeProto.SparseTensor as decode() and create() give it. */
export interface TypeProtoSparseTensor extends ITypeProtoSparseTensor {
  elemType: number;
  shape?: ITensorShapeProto | null;
}

/** onnx.TypeProto.Opaque: what create() and encode() take. */
export interface ITypeProtoOpaque {
  domain?: string | null;
  name?: string | null;
}
/** onnx.TypeProto.Opaque as decode() and create() give it. */
export interface TypeProtoOpaque extends ITypeProtoOpaque {
  domain: string;
  name: string;
}

/** onnx.OperatorSetIdProto: what create() and encode() take. */
export interface IOperatorSetIdProto {
  domain?: string | null;
  version?: Int64 | null;
}
/** onnx.OperatorSetIdProto as decode() and create() give it. */
export interface OperatorSetIdProto extends IOperatorSetIdProto {
  domain: string;
  version: Int64;
}

/** onnx.FunctionProto: what create() and encode() take. */
export interface IFunctionProto {
  name?: string | null;
  input?: string[] | null;
  output?: string[] | null;
  attribute?: string[] | null;
  attributeProto?: IAttributeProto[] | null;
  node?: INodeProto[] | null;
  docString?: string | null;
  opsetImport?: IOperatorSetIdProto[] | null;
  domain?: string | null;
  overload?: string | null;
  valueInfo?: IValueInfoProto[] | null;
  metadataProps?: IStringStringEntryProto[] | null;
}
/** onnx.FunctionProto as decode() and create() give it. */
export interface FunctionProto extends IFunctionProto {
  name: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: IAttributeProto[];
  node: INodeProto[];
  docString: string;
  opsetImport: IOperatorSetIdProto[];
  domain: string;
  overload: string;
  valueInfo: IValueInfoProto[];
  metadataProps: IStringStringEntryProto[];
}

/** The package `onnx`: its message types with their nested types and enums. */
export interface OnnxPackage {
  readonly Version: {
    readonly _START_VERSION: 0;
    readonly IR_VERSION_2017_10_10: 1;
    readonly IR_VERSION_2017_10_30: 2;
    readonly IR_VERSION_2017_11_3: 3;
    readonly IR_VERSION_2019_1_22: 4;
    readonly IR_VERSION_2019_3_18: 5;
    readonly IR_VERSION_2019_9_19: 6;
    readonly IR_VERSION_2020_5_8: 7;
    readonly IR_VERSION_2021_7_30: 8;
    readonly IR_VERSION_2023_5_5: 9;
    readonly IR_VERSION: 10;
  };
  readonly AttributeProto: MessageType<IAttributeProto, AttributeProto> & {
    readonly AttributeType: {
      readonly UNDEFINED: 0;
      readonly FLOAT: 1;
      readonly INT: 2;
      readonly STRING: 3;
      readonly TENSOR: 4;
      readonly GRAPH: 5;
      readonly SPARSE_TENSOR: 11;
      readonly TYPE_PROTO: 13;
      readonly FLOATS: 6;
      readonly INTS: 7;
      readonly STRINGS: 8;
      readonly TENSORS: 9;
      readonly GRAPHS: 10;
      readonly SPARSE_TENSORS: 12;
      readonly TYPE_PROTOS: 14;
    };
  };
  readonly ValueInfoProto: MessageType<IValueInfoProto, ValueInfoProto>;
  readonly NodeProto: MessageType<INodeProto, NodeProto>;
  readonly TrainingInfoProto: MessageType<ITrainingInfoProto, TrainingInfoProto>;
  readonly ModelProto: MessageType<IModelProto, ModelProto>;
  readonly StringStringEntryProto: MessageType<IStringStringEntryProto, StringStringEntryProto>;
  readonly TensorAnnotation: MessageType<ITensorAnnotation, TensorAnnotation>;
  readonly GraphProto: MessageType<IGraphProto, GraphProto>;
  readonly TensorProto: MessageType<ITensorProto, TensorProto> & {
    readonly DataType: {
      readonly UNDEFINED: 0;
      readonly FLOAT: 1;
      readonly UINT8: 2;
      readonly INT8: 3;
      readonly UINT16: 4;
      readonly INT16: 5;
      readonly INT32: 6;
      readonly INT64: 7;
      readonly STRING: 8;
      readonly BOOL: 9;
      readonly FLOAT16: 10;
      readonly DOUBLE: 11;
      readonly UINT32: 12;
      readonly UINT64: 13;
      readonly COMPLEX64: 14;
      readonly COMPLEX128: 15;
      readonly BFLOAT16: 16;
      readonly FLOAT8E4M3FN: 17;
      readonly FLOAT8E4M3FNUZ: 18;
      readonly FLOAT8E5M2: 19;
      readonly FLOAT8E5M2FNUZ: 20;
      readonly UINT4: 21;
      readonly INT4: 22;
    };
    readonly Segment: MessageType<ITensorProtoSegment, TensorProtoSegment>;
    readonly DataLocation: {
      readonly DEFAULT: 0;
      readonly EXTERNAL: 1;
    };
  };
  readonly SparseTensorProto: MessageType<ISparseTensorProto, SparseTensorProto>;
  readonly TensorShapeProto: MessageType<ITensorShapeProto, TensorShapeProto> & {
    readonly Dimension: MessageType<ITensorShapeProtoDimension, TensorShapeProtoDimension>;
  };
  readonly TypeProto: MessageType<ITypeProto, TypeProto> & {
    readonly Tensor: MessageType<ITypeProtoTensor, TypeProtoTensor>;
    readonly Sequence: MessageType<ITypeProtoSequence, TypeProtoSequence>;
    readonly Map: MessageType<ITypeProtoMap, TypeProtoMap>;
    readonly Optional: MessageType<ITypeProtoOptional, TypeProtoOptional>;
    readonly SparseTensor: MessageType<ITypeProtoSparseTensor, TypeProtoSparseTensor>;
    readonly Opaque: MessageType<ITypeProtoOpaque, TypeProtoOpaque>;
  };
  readonly OperatorSetIdProto: MessageType<IOperatorSetIdProto, OperatorSetIdProto>;
  readonly OperatorStatus: {
    readonly EXPERIMENTAL: 0;
    readonly STABLE: 1;
  };
  readonly FunctionProto: MessageType<IFunctionProto, FunctionProto>;
}
